"""``python -m neurodecode.predict checkpoint=... input=... output=... [key=value ...]``.

Keys and defaults are in ``configs/predict.yaml``; unknown keys are errors. Prints one line
per recording and the path of ``summary.json``; exits with 1 if a recording failed (the
others are still written), 2 for an invalid command.
"""

from __future__ import annotations

import logging
import sys

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from neurodecode.errors import ConfigError, NeurodecodeError
from neurodecode.resources import resource_dir


def load_config(overrides: list[str]) -> DictConfig:
    """``configs/predict.yaml`` with ``key=value`` overrides (struct mode: no new keys)."""
    path = resource_dir("configs") / "predict.yaml"
    config = OmegaConf.load(path)
    OmegaConf.set_struct(config, True)
    bad = [item for item in overrides if "=" not in item]
    if bad:
        raise ConfigError(f"arguments must be key=value, got {bad}", path=path)
    try:
        config = OmegaConf.merge(config, OmegaConf.from_dotlist(overrides))
        missing = sorted(OmegaConf.missing_keys(config))
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid setting: {err.msg}", path=path) from None
    if missing:
        raise ConfigError(f"missing {', '.join(missing)}", path=path,
                          hint="python -m neurodecode.predict checkpoint=... input=... "
                          "output=...")  # fmt: skip
    return config


def main(argv: list[str] | None = None) -> int:
    """Run prediction from the command line; return the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        print((resource_dir("configs") / "predict.yaml").read_text())
        return 0
    try:
        cfg = load_config(argv)
        from neurodecode.predict import load_detector, predict

        if cfg.threads is not None:
            import torch

            torch.set_num_threads(int(cfg.threads))

        detector = load_detector(
            str(cfg.checkpoint),
            post=OmegaConf.to_container(cfg.post),
            preprocess=cfg.preprocess,
            revision=None if cfg.revision is None else str(cfg.revision),
        )
        summary = predict(
            detector,
            cfg.input,
            cfg.output,
            chunk_s=float(cfg.chunk_s),
            batch_size=int(cfg.batch_size),
            allow_missing_channels=bool(cfg.allow_missing_channels),
            figure=bool(cfg.figure),
        )
    except NeurodecodeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    for entry in summary["recordings"]:
        print(f"ok      {entry['input']}: {entry['n_events']} event(s), "
              f"{entry['duration_s']:.0f} s, {entry['realtime_factor']}× real time")  # fmt: skip
    for entry in summary["failed"]:
        print(f"FAILED  {entry['input']}: {entry['message']}")
    print(f"summary: {summary['output']}/summary.json")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
