"""Train and evaluate one recipe: ``python -m neurodecode.train recipe=<name> [overrides]``.

Configs are Hydra's: ``configs/train.yaml`` composes the groups ``data``, ``preprocess``,
``model``, ``task``, ``trainer``, ``callbacks`` and ``logger``; a recipe
(``recipes/<name>.yaml``, a ``# @package _global_`` file) chooses among them and sets its
own keys; the command line overrides any key (``model=eegnet trainer.max_epochs=3 seed=1``).
``--help`` alone lists the recipes; ``recipe=<name> --help`` lists the groups; ``--cfg job``
prints the resolved config. Unknown names list the valid ones; an unknown key is refused
with the known keys nearest to it. From Python, :func:`compose` gives the same config and
:func:`run_recipe` runs it through the run layer (:func:`neurodecode.run.run`).

Each run writes into ``runs/<recipe>/<timestamp>/``::

    checkpoints/best-*.ckpt, last.ckpt   Lightning checkpoints (model selection on validation)
    results.json                         metrics, config and hashes, seed, versions
    plots/*.png                          confusion matrix; seizure probability timeline
    events/*_events.tsv                  seizure detections in SzCORE's BIDS format
    encoder/                             the exported encoder (recipe=pretrain)
    qc.json                              the data QC report of the window cache
    logs/csv/metrics.csv, logs/tensorboard/   training curves
    .hydra/                              the composed config and the overrides
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from neurodecode.resources import resource_dir
from neurodecode.run import read_results, resume_checkpoint, run, summary_lines
from neurodecode.run.recipes import (
    compose_with_hydra,
    log_lightning_through_root,
    override_errors,
    plain_failures,
    register_recipes,
    usage,
)

__all__ = ["compose", "main", "read_results", "run", "run_recipe", "summary_lines", "usage"]


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The config that ``python -m neurodecode.train <overrides>`` would run.

    Parameters
    ----------
    overrides : sequence of str
        Command-line style overrides, e.g. ``["recipe=seizure", "data=simulated",
        "trainer.max_epochs=3"]``; ``recipe=<name>`` is required.

    Returns
    -------
    DictConfig
        The resolved-on-access config, in struct mode (unknown keys are errors).
    """
    register_recipes()
    return compose_with_hydra(overrides)[0]


def run_recipe(overrides: Sequence[str], run_dir: str | Path | None = None) -> Path:
    """Train and evaluate like ``python -m neurodecode.train <overrides>``, from Python.

    Parameters
    ----------
    overrides : sequence of str
        As on the command line, e.g. ``["recipe=motor_imagery", "data=simulated"]``.
    run_dir : str or pathlib.Path, optional
        The run folder; by default ``<runs_dir>/<recipe>/<date>_<time>`` as on the command
        line. With ``resume``, the resumed run's folder is used instead.

    Returns
    -------
    pathlib.Path
        The run folder, with ``results.json``, checkpoints, plots and logs.
    """
    register_recipes()
    cfg, recipe = compose_with_hydra(overrides)
    if run_dir is None:
        run_dir = Path(cfg.runs_dir) / recipe / f"{dt.datetime.now():%Y-%m-%d_%H-%M-%S}"
    run_dir = Path(run_dir)
    checkpoint = resume_checkpoint(cfg, run_dir)
    if checkpoint is None:  # what Hydra writes to .hydra/ for a command-line run
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(list(overrides)), run_dir / ".hydra" / "overrides.yaml")
    run(cfg, run_dir, recipe=recipe)
    return checkpoint.parent.parent if checkpoint is not None else run_dir


@hydra.main(config_path=str(resource_dir("configs")), config_name="train", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    log_lightning_through_root()
    # run() logs the summary lines, which Hydra's console handler prints
    with plain_failures(cfg):
        run(cfg, Path(HydraConfig.get().runtime.output_dir))


def main() -> None:
    """Command-line entry point (``python -m neurodecode.train``, ``neurodecode-train``).

    Reads ``sys.argv``. ``--help`` without ``recipe=<name>`` prints :func:`usage`; an
    unknown key or value in the overrides is reported in one paragraph with the nearest
    known names (exit status 2); everything else goes to Hydra.
    """
    register_recipes()
    args = sys.argv[1:]
    if {"--help", "-h"} & set(args) and not any(a.startswith("recipe=") for a in args):
        print(usage())
        return
    problem = override_errors(args)
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
