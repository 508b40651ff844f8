"""Image retrieval on THINGS-EEG2's published test set: 200-way among the test images in the
order of the shared CLIP features, results per subject, intra- and inter-subject."""

from __future__ import annotations

import numpy as np
import pytest

from neurodecode import train
from neurodecode.run.record import summary_lines
from tests.conftest import require_shared
from tests.data.test_things_eeg2 import write_release_file


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Two subjects in the release's layout (random EEG) and an image table whose first
    200 rows are the real CLIP features of the THINGS-EEG2 test images."""
    root = tmp_path_factory.mktemp("things_eeg2")
    for k, subject in enumerate(("01", "02")):
        write_release_file(root / f"sub-{subject}" / "preprocessed_eeg_test.npy", 200, 2, k)
        write_release_file(root / f"sub-{subject}" / "preprocessed_eeg_training.npy", 30, 2, k)
    test_features = np.load(require_shared("excerpts/things_eeg2/clip_feature_maps_test.npy"))
    training = np.random.default_rng(0).standard_normal((30, 1, test_features.shape[-1]))
    table = root / "image_features.npy"
    np.save(table, np.concatenate([test_features, training]).astype(np.float32))
    return root, table


@pytest.mark.parametrize(("protocol", "trained_on"), [("intra_subject", {"02"}),
                                                      ("inter_subject", {"01"})])  # fmt: skip
def test_published_test_set_per_subject(release, tmp_path, monkeypatch, protocol, trained_on):
    root, table = release
    monkeypatch.setenv("NEURODECODE_THINGS_EEG2_ROOT", str(root))
    monkeypatch.setenv("NEURODECODE_HOME", str(tmp_path / "home"))
    cfg = train.compose([
        "recipe=image_retrieval", "data=things_eeg2", f"data.image_embeddings={table}",
        f"data.datamodule.split={protocol}", "data.datamodule.fold=1",
        "data.datamodule.num_workers=0", "data.datamodule.batch_size=32",
        "model.size=tiny", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
    ])  # fmt: skip
    results = train.run(cfg, tmp_path / "runs")
    test = results["metrics"]["test"]
    assert test["n_way"] == 200 and test["chance_top1"] == pytest.approx(1 / 200)
    assert set(test["per_subject"]) == {"02"}  # fold 1: the second subject is tested
    assert test["per_subject"]["02"]["n_way"] == 200
    split = results["data"]["split"]
    assert split["split"] == f"{protocol}/test-sub-02"
    assert set(split["train"]["subjects"]) == trained_on
    assert not any("simulated" in line for line in summary_lines(results))
