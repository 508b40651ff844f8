"""A run with scaling.method=train_split: statistics of its training split, recorded in
results.json, stored in the checkpoint and carried into the export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurodecode import train
from neurodecode.data import scaling
from neurodecode.data.cache import WindowCache
from neurodecode.hub import export_run


@pytest.mark.slow
def test_a_train_split_run_records_the_statistics_of_its_training_split(neurodecode_home, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train.run_recipe(
            ["recipe=motor_imagery", "data=simulated", "trainer.max_epochs=1",
             "preprocess.scaling.method=train_split", "trainer.enable_progress_bar=false",
             "+trainer.enable_model_summary=false"],
            tmp_path / "run",
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    results = json.loads((run / "results.json").read_text())
    recorded = results["data"]["preprocess"]["scaling"]["statistics"]
    cache = WindowCache(results["data"]["cache_path"])
    subjects = results["data"]["split"]["train"]["subjects"]
    train_rows = np.flatnonzero(cache.index["subject"].isin(subjects))
    clip = cache.meta["config"]["clip"]
    assert recorded == scaling.fit_statistics(cache, train_rows, "channel", clip).as_config()
    # the held-out subjects change the statistics: a leak would be seen
    everything = scaling.fit_statistics(cache, range(len(cache)), "channel", clip).as_config()
    assert everything != recorded
    (best,) = (run / "checkpoints").glob("best*.ckpt")
    stored = torch.load(best, weights_only=True)["EEGDataModule"]["scaling_statistics"]
    assert {k: stored[k] for k in ("centre", "spread")} == recorded and stored["clip"] == clip
    folder = export_run(run, tmp_path / "export")
    exported = json.loads((folder / "config.json").read_text())["preprocessing"]
    assert exported["scaling"] == {**results["data"]["preprocess"]["scaling"]}
    assert exported["scaling"]["method"] == "train_split"
