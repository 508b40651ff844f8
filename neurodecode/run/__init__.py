"""The run layer: one path for every recipe, pretraining included.

:func:`run` builds the trainer from config (``cfg.trainer``, and the Hydra groups
``callbacks`` and ``logger``), lets the task prepare its data and build itself
(:mod:`neurodecode.tasks.base`), fits, selects on validation, tests, exports the encoder
where the task asks for it and writes ``results.json`` (:func:`write_results`).
:mod:`neurodecode.train` is the command-line shell over it.
"""

from neurodecode.run.callbacks import EpochSeeding
from neurodecode.run.estimator import NeurodecodeClassifier
from neurodecode.run.record import (
    config_hash,
    read_results,
    summary_lines,
    versions,
    write_outputs,
    write_results,
)
from neurodecode.run.runner import build_task, resume_checkpoint, run, trained_encoder
from neurodecode.run.trainer import (
    UncastInputsFSDPStrategy,
    auto_precision,
    build_trainer,
    fsdp_strategy,
    trainer_arguments,
)

__all__ = [
    "EpochSeeding",
    "NeurodecodeClassifier",
    "UncastInputsFSDPStrategy",
    "auto_precision",
    "build_task",
    "build_trainer",
    "config_hash",
    "fsdp_strategy",
    "read_results",
    "resume_checkpoint",
    "run",
    "summary_lines",
    "trained_encoder",
    "trainer_arguments",
    "versions",
    "write_outputs",
    "write_results",
]
