"""braindecode baselines: lazy import, names, contract checks, embeddings."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from neurodecode.errors import ContractError, UnknownNameError
from neurodecode.registry import MODELS, instantiate


def test_importing_neurodecode_never_imports_braindecode():
    code = (
        "import sys, neurodecode, neurodecode.models\n"
        "from neurodecode.registry import MODELS\n"
        "assert 'braindecode' in MODELS.names()\n"
        "MODELS.get('braindecode')\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('braindecode', 'moabb'))\n"
        "assert not leaked, leaked\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture()
def signal() -> dict:
    pytest.importorskip("braindecode")
    return dict(n_chans=8, n_outputs=2, n_times=500, sfreq=250.0)


def test_config_builds_a_baseline_by_name(signal):
    model = instantiate({"_target_": "braindecode", "name": "ShallowFBCSPNet"}, **signal)
    assert type(model.net).__name__ == "ShallowFBCSPNet"
    assert MODELS.name_of(model) == "braindecode"
    old_name = MODELS.build("braindecode", name="EEGNetv4", **signal)
    assert type(old_name.net).__name__ == "EEGNet"


def test_unknown_baseline_lists_valid_names(signal):
    with pytest.raises(UnknownNameError, match="no model 'EEGNotANet'.*EEGConformer"):
        MODELS.build("braindecode", name="EEGNotANet", **signal)


def test_length_other_than_built_for_is_refused(signal):
    model = MODELS.build("braindecode", name="EEGConformer", **signal)
    with pytest.raises(ContractError, match="built for windows of 500 samples; got 600"):
        model(torch.randn(2, 8, 600))
    with pytest.raises(ContractError, match="built for 8 channels; got 9"):
        model(torch.randn(2, 9, 500))


def test_mask_zeroes_missing_channels_and_features_feed_the_final_layer(signal):
    torch.manual_seed(0)
    model = MODELS.build("braindecode", name="EEGConformer", **signal).eval()
    x = torch.randn(2, 8, 500)
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[:, 2] = False
    zeroed = x.clone()
    zeroed[:, 2] = 0
    with torch.no_grad():
        torch.testing.assert_close(model(x, ch_mask=mask), model(zeroed))
        features = model(x, return_features=True)
        assert features.shape == (2, model.n_features)
        torch.testing.assert_close(model.net.final_layer(features), model(x))
