"""Training and serving share one transform: predict scores the cached windows, bit for bit."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from neurodecode.data.build import build_cache
from neurodecode.data.io import open_recording
from neurodecode.data.transform import recording_scaling, streamed_scaling
from neurodecode.predict import load_detector, pipeline


@pytest.fixture(scope="module")
def detector(exported_detector):
    return load_detector(exported_detector)


def test_predict_scores_the_cached_windows_bit_for_bit(detector, simulated_root, tmp_path):
    paths = sorted(simulated_root.rglob("*_eeg.edf"))
    entries = [
        SimpleNamespace(path=p, subject=str(i), session=None, run=None, annotation_path=None)
        for i, p in enumerate(paths)
    ]
    cache = build_cache(
        entries, detector.preprocess, tmp_path, dataset="simulated", num_workers=0, progress=False
    )
    for recording, path in zip(cache.meta["recordings"], paths, strict=True):
        reader = open_recording(path)
        grid = pipeline.make_grid(detector, reader.header.sfreq, reader.n_times)
        spans = pipeline.plan_spans(grid, chunk_s=600.0)
        [span] = pipeline.recording_windows(detector, reader, grid, spans)
        np.testing.assert_array_equal(span.start_s, grid.window_starts() / grid.sfreq)
        rows = np.flatnonzero(cache.index["recording"] == recording)
        assert 0 < len(rows) <= len(span.start_s)
        cached = np.stack([cache[i]["x"].numpy() for i in rows])
        starts = cache.index["start_s"].to_numpy()[rows]
        where = np.searchsorted(span.start_s, starts)
        np.testing.assert_array_equal(span.start_s[where], starts)
        np.testing.assert_array_equal(span.x[where], cached)
        np.testing.assert_array_equal(span.mask, cache[int(rows[0])]["ch_mask"].numpy())


def test_long_recordings_are_scaled_with_whole_recording_statistics(detector, simulated_root):
    """In spans, the statistics come from every span (each sample once), as on the whole."""
    reader = open_recording(sorted(simulated_root.rglob("*_eeg.edf"))[0])
    grid = pipeline.make_grid(detector, reader.header.sfreq, reader.n_times)
    spans = pipeline.plan_spans(grid, chunk_s=60.0)
    assert len(spans) == 4
    parts = []
    for k, (lo, hi, _) in enumerate(spans):
        own = (spans[k + 1][0] if k + 1 < len(spans) else hi) - lo
        part = pipeline.preprocess_span(detector, reader, grid, lo, hi)
        parts.append((part.signal[:, :own], part.mask))
    config = detector.preprocess
    streamed = streamed_scaling(config, lambda: parts, len(detector.ch_names))
    mask = np.logical_and.reduce([m for _, m in parts])
    whole = recording_scaling(config, np.concatenate([s for s, _ in parts], axis=1), mask)
    np.testing.assert_allclose(streamed.centre[mask], whole.centre[mask], rtol=1e-12)
    np.testing.assert_allclose(streamed.spread[mask], whole.spread[mask], rtol=1e-12)
    windows = list(pipeline.recording_windows(detector, reader, grid, spans))
    assert [len(w.x) for w in windows] == [len(inside) for _, _, inside in spans]
