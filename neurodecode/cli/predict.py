"""``neurodecode predict checkpoint=... input=... output=... [key=value ...]``, or
``neurodecode predict checkpoint=... stream=lsl:<name>|file:<recording> [speed=...]``.

Keys and defaults are in ``configs/predict.yaml``; unknown keys are errors. Prints one line
per recording and the path of ``summary.json``. Exit status: 0 when every second of every
recording was predicted; 3 when some recordings failed, or some stretches of a recording
(NaN/inf samples, a span that could not be processed) have no prediction, and the rest
was written; 1 when none could be predicted or the job failed; 2 for an invalid command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from neurodecode.cli.options import (
    PARTIAL,
    merge_overrides,
    report_errors,
    setup_logging,
    wants_help,
)
from neurodecode.cli.streaming import parse_source, run_stream
from neurodecode.errors import ConfigError
from neurodecode.predict import load_detector, predict
from neurodecode.predict.report import unscored_text
from neurodecode.resources import resource_dir


def config_path():
    """``configs/predict.yaml``: the keys, their defaults and what they mean."""
    return resource_dir("configs") / "predict.yaml"


def load_config(overrides: Sequence[str], prog: str = "neurodecode predict") -> DictConfig:
    """``configs/predict.yaml`` with ``key=value`` overrides (no new keys); ``input`` and
    ``output`` are required unless ``stream`` is given."""
    cfg = merge_overrides(OmegaConf.load(config_path()), overrides, prog)
    if cfg.stream is not None:
        parse_source(cfg.stream)
    missing = [key for key in ("input", "output") if cfg.stream is None and cfg[key] is None]
    if missing:
        raise ConfigError(
            f"{prog}: missing {', '.join(missing)}",
            hint="set " + " ".join(f"{key}=..." for key in missing) + ", or stream=...",
        )
    return cfg


def run(cfg: DictConfig) -> int:
    """Predict every recording of ``cfg.input``; print one line each; return the status."""
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    detector = load_detector(
        str(cfg.checkpoint),
        post=OmegaConf.to_container(cfg.post),
        preprocess=cfg.preprocess,
        revision=None if cfg.revision is None else str(cfg.revision),
    )
    if cfg.stream is not None:
        return run_stream(detector, cfg)
    summary = predict(
        detector,
        cfg.input,
        cfg.output,
        chunk_s=float(cfg.chunk_s),
        batch_size=int(cfg.batch_size),
        allow_missing_channels=bool(cfg.allow_missing_channels),
        figure=bool(cfg.figure),
    )
    for entry in summary["recordings"]:
        print(f"{entry['status']:<8}{entry['input']}: {entry['n_events']} event(s), "
              f"{entry['duration_s']:.0f} s, {entry['realtime_factor']}× real time")  # fmt: skip
        if entry["status"] == "partial":
            print(f"        not predicted: {unscored_text(entry['qc'])}")
    for entry in summary["failed"]:
        print(f"FAILED  {entry['input']}: {entry['message']}")
    print(f"summary: {summary['output']}/summary.json")
    if not summary["recordings"]:
        return 1
    partial = summary["failed"] or any(e["status"] != "ok" for e in summary["recordings"])
    return PARTIAL if partial else 0


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode predict") -> int:
    """Run prediction from the command line; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv):
        print(f"usage: {prog} checkpoint=... input=... output=... [key=value ...]")
        print(__doc__.split("\n\n", 1)[1])
        print(config_path().read_text())
        return 0
    setup_logging()
    return report_errors(lambda: run(load_config(argv, prog)), config_status=2)
