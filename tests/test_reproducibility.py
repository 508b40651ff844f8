"""Runs are reproducible on CPU given the seed (issue 12, item 4).

The run layer seeds before preparing the data and again right before the model is built, so
the initial weights do not depend on what preparing the data drew (a cache built in this
process, or reused): the first run below builds the cache in-process, the second reuses it.
"""

from __future__ import annotations

import json

import pytest

from neurodecode import train

QUICK = ["recipe=motor_imagery", "data=simulated", "model=dual_branch_conformer",
         "model.size=tiny", "trainer.max_epochs=2",
         "+data.manifest.source.generator_params.n_subjects=3",
         "+data.manifest.source.generator_params.n_sessions=1",
         "data.datamodule.num_workers=0", "+data.prepare.num_workers=0",
         "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"]  # fmt: skip


@pytest.mark.slow
def test_two_runs_with_the_same_seed_give_identical_metrics(neurodecode_home, tmp_path, one_thread):
    metrics = []
    for name in ("builds_the_cache", "reuses_it"):
        run = train.run_recipe([*QUICK, "seed=3"], tmp_path / name)
        metrics.append(json.loads((run / "results.json").read_text())["metrics"])
    first, again = metrics
    assert first["test"]["n"] == 60
    assert again == first  # every figure, bit for bit
