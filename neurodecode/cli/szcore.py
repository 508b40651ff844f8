"""``neurodecode szcore``: the entry point of an SzCORE benchmark container.

SzCORE (epilepsybenchmarks.com) runs a seizure detector as a container with no network:
the recording is ``$INPUT`` below ``/data`` (EDF, the 19 electrodes of the 10-20 system
against their common average, ``Fp1-Avg`` ..., 256 Hz) and the detections go to ``$OUTPUT``
below ``/output`` (an SzCORE ``*_events.tsv``: onset, duration, eventType, confidence,
channels, dateTime, recordingDuration). The model is an exported neurodecode model folder.

Environment:
  INPUT                       the recording, relative to NEURODECODE_SZCORE_DATA or absolute
  OUTPUT                      the events file, relative to NEURODECODE_SZCORE_OUTPUT or absolute
  NEURODECODE_CHECKPOINT      the model folder (default /model)
  NEURODECODE_SZCORE_DATA     default /data
  NEURODECODE_SZCORE_OUTPUT   default /output

Exit status: 0 when the events file was written, 1 when the recording could not be
predicted, 2 when INPUT or OUTPUT is missing. See docs/szcore.md (with a Dockerfile).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from neurodecode.cli.options import report_errors, setup_logging, wants_help
from neurodecode.errors import ConfigError
from neurodecode.files import write_atomic
from neurodecode.predict import load_detector, predict_recording


def _path(environment: Mapping[str, str], name: str, folder_variable: str, folder: str) -> Path:
    """``$name`` below ``$folder_variable`` (default ``folder``), unless it is absolute."""
    value = environment.get(name)
    if not value:
        raise ConfigError(f"the environment variable {name} is not set",
                          hint="SzCORE sets INPUT and OUTPUT; see `neurodecode szcore --help`")  # fmt: skip
    return Path(environment.get(folder_variable, folder)) / value


def run(environment: Mapping[str, str]) -> int:
    """Predict ``$INPUT`` and write its events to ``$OUTPUT``; return the exit status."""
    source = _path(environment, "INPUT", "NEURODECODE_SZCORE_DATA", "/data")
    target = _path(environment, "OUTPUT", "NEURODECODE_SZCORE_OUTPUT", "/output")
    detector = load_detector(environment.get("NEURODECODE_CHECKPOINT", "/model"))
    with tempfile.TemporaryDirectory(prefix="neurodecode-szcore-") as scratch:
        result = predict_recording(source, detector, scratch, stem="events", figure=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, Path(result.outputs["events"]).read_bytes())
    print(f"{source}: {len(result.events)} event(s) → {target}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode szcore") -> int:
    """Run the SzCORE container entry point; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_help(argv) or argv:
        print(f"usage: {prog}   (settings come from the environment)")
        print(__doc__.split("\n\n", 1)[1])
        return 0 if wants_help(argv) else 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark container has no network
    setup_logging()
    return report_errors(lambda: run(os.environ), config_status=2)
