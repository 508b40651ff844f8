"""The per-recording transform: scaling as the cache always did, streamed statistics exact."""

from __future__ import annotations

import numpy as np
import pytest

from neurodecode.data import transform
from neurodecode.data.preprocess import load_preprocess_config, scale_signal


@pytest.mark.parametrize("per", ["channel", "recording"])
def test_scaling_equals_scale_signal_bit_for_bit(per):
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal((5, 3000)) * 30).astype(np.float32)
    good = np.array([True, True, False, True, True])
    config = load_preprocess_config("default", [f"scaling.per={per}", "clip=null"])
    scaling = transform.recording_scaling(config, signal, good)
    expected = scale_signal(signal, good, "robust_zscore", per, config.scaling.scale_uv)
    np.testing.assert_array_equal(scaling.apply(signal, good), expected)


def test_streamed_percentiles_are_exact_with_ties_and_empty_groups():
    rng = np.random.default_rng(1)
    values = np.concatenate(
        [
            rng.standard_normal((2, 20000)).astype(np.float32) * 10,
            np.zeros((2, 5000), np.float32),
            rng.standard_cauchy((2, 8000)).astype(np.float32),
        ],
        axis=1,
    )
    values[1] = 3.0  # one distinct value
    blocks = [values[:, a : a + 7000] for a in range(0, values.shape[1], 7000)]
    out = transform.streamed_percentiles(
        lambda: ([b[0], b[1], b[0][:0]] for b in blocks), 3, [25, 50, 75]
    )
    np.testing.assert_array_equal(out[:2], np.percentile(values, [25, 50, 75], axis=1).T)
    assert np.isnan(out[2]).all()
