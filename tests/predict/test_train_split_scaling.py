"""A train_split model through export and predict: the same windows, the same outputs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neurodecode.data import scaling
from neurodecode.data.build import build_cache
from neurodecode.data.io import open_recording
from neurodecode.data.montage import channel_positions
from neurodecode.data.preprocess import config_dict, load_preprocess_config
from neurodecode.errors import CheckpointError
from neurodecode.hub import build_model, export_model, from_pretrained
from neurodecode.predict import load_detector, pipeline
from tests.predict.conftest import RECIPE_WINDOWS


@pytest.fixture(scope="module")
def train_split_cache(simulated_root, tmp_path_factory):
    """The simulated recordings cached in µV (scaling.method=train_split)."""
    paths = sorted(simulated_root.rglob("*_eeg.edf"))
    entries = [
        SimpleNamespace(path=p, subject=str(i), session=None, run=None, annotation_path=None)
        for i, p in enumerate(paths)
    ]
    config = load_preprocess_config("seizure", overrides=RECIPE_WINDOWS)
    config.scaling.method = "train_split"
    root = tmp_path_factory.mktemp("train_split_cache")
    cache = build_cache(entries, config, root, dataset="simulated", num_workers=0, progress=False)
    return cache, paths


@pytest.fixture(scope="module")
def exported(train_split_cache, tmp_path_factory):
    """An untrained tiny model exported with the statistics of recording 0 (the training
    split); recording 1 is new data for it."""
    cache, _ = train_split_cache
    train = np.flatnonzero(cache.index["subject"] == "0")
    statistics = scaling.fit_for(cache, train)
    ch_names = list(cache.ch_names)
    pos = channel_positions(ch_names)
    torch.manual_seed(0)
    model = build_model(
        "dual_branch_conformer", size="tiny", n_chans=len(ch_names), n_outputs=2,
        n_times=cache.n_times, sfreq=cache.sfreq,
        chs_info=[{"ch_name": n, "loc": [*map(float, p), *[0.0] * 9]}
                  for n, p in zip(ch_names, pos, strict=True)],
    )  # fmt: skip
    out = tmp_path_factory.mktemp("train_split_export")
    preprocessing = scaling.with_statistics(cache.meta["config"], statistics)
    export_model(model.eval(), out, ch_pos=pos, preprocessing=preprocessing,
                 labels=["background", "seizure"], task="seizure")  # fmt: skip
    return out, statistics


def test_export_and_predict_replay_the_training_split_statistics(train_split_cache, exported):
    cache, paths = train_split_cache
    folder, statistics = exported
    recorded = json.loads((folder / "config.json").read_text())["preprocessing"]["scaling"]
    assert recorded["statistics"] == statistics.as_config()
    detector = load_detector(folder)
    scaled = scaling.ScaledWindows(cache, statistics)  # what training batches are
    reader = open_recording(paths[1])
    grid = pipeline.make_grid(detector, reader.header.sfreq, reader.n_times)
    [span] = pipeline.recording_windows(detector, reader, grid, pipeline.plan_spans(grid, 600.0))
    rows = np.flatnonzero(cache.index["subject"] == "1")
    where = np.searchsorted(span.start_s, cache.index["start_s"].to_numpy()[rows])
    trained_on = np.stack([scaled[int(i)]["x"].numpy() for i in rows])
    np.testing.assert_array_equal(span.x[where], trained_on)  # the same windows, bit for bit
    assert np.abs(span.x).max() <= detector.preprocess.clip
    raw = np.stack([cache[int(i)]["x"].numpy() for i in rows])
    assert np.abs(raw).max() > 3 * np.abs(trained_on).max()  # the cache holds µV
    # the same outputs as the model on the training-side batch
    with torch.no_grad():
        logits = detector.model(torch.from_numpy(trained_on))
    expected = torch.softmax(logits, dim=-1)[:, detector.positive].numpy()
    np.testing.assert_allclose(detector.probabilities(span.x[where], span.mask), expected,
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def test_an_export_without_its_statistics_is_refused_at_load(exported, tmp_path):
    folder, _ = exported
    copy = tmp_path / "stripped"
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    config["preprocessing"]["scaling"]["statistics"] = None
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not record the training split's scaling"):
        from_pretrained(copy)
    with pytest.raises(CheckpointError, match="does not record the training split's scaling"):
        load_detector(copy)


def test_a_model_is_not_exported_without_its_statistics(train_split_cache, exported, tmp_path):
    cache, _ = train_split_cache
    loaded = from_pretrained(exported[0])
    with pytest.raises(CheckpointError, match="not re-estimated"):
        export_model(loaded.model, tmp_path / "out", preprocessing=cache.meta["config"])
    assert not (tmp_path / "out" / "config.json").exists()


def test_a_preprocessing_override_without_statistics_is_refused_before_reading(exported, tmp_path):
    """``preprocess=`` given by hand for a train_split model: refused, not re-estimated."""
    folder, _ = exported
    detector = load_detector(folder)
    config = load_preprocess_config("default", overrides=config_dict(detector.preprocess))
    config.scaling.statistics = None
    stripped = dataclasses.replace(detector, preprocess=config)
    header = SimpleNamespace(source="new.edf", sfreq=256.0)
    with pytest.raises(CheckpointError, match="not re-estimated"):
        pipeline.check_recording(stripped, header, 256 * 60)
