"""``neurodecode data <fetch|info|prepare> <dataset or file> [key=value ...]``."""

from __future__ import annotations

import logging
import re
import sys
import textwrap
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from neurodecode.cli import SUMMARIES
from neurodecode.cli.options import (
    PARTIAL,
    Option,
    check_known,
    dotlist_values,
    parse_options,
    pick,
    report_errors,
    setup_logging,
    split_overrides,
    wants_help,
)
from neurodecode.data import artifacts
from neurodecode.data.fetch import fetch_dataset
from neurodecode.data.io import read_recording, suspicious
from neurodecode.data.manifest import load_manifest
from neurodecode.data.prepare import prepare_dataset
from neurodecode.data.recording import Recording
from neurodecode.errors import ConfigError, DownloadError

SUMMARY = SUMMARIES["data"]

FETCH_KEYS = ("subjects", "sessions", "runs", "mirror", "root", "retries")
EXIT_STATUSES = (
    "Exit status: 0 when every recording succeeded, 3 when some failed but the rest is "
    "ready (the QC report lists why), 1 on an error that left nothing usable"
)
_GENERATOR = "generator_params."


def fetch(dataset: str, items: list[str], command: str) -> int:
    """Download (or find) and verify a dataset's selected recordings; print where they are."""
    manifest = load_manifest(dataset)
    raw = split_overrides(items, command)
    groups = set(re.compile(manifest.structure.recording).groupindex) - {
        "subject",
        "session",
        "run",
    }
    generator = [key for key in raw if key.startswith(_GENERATOR)]
    check_known(raw, [*FETCH_KEYS, *sorted(groups), *generator], command)
    options = dotlist_values(raw, command)
    if "generator_params" in options:
        params = {**manifest.source.generator_params, **options.pop("generator_params")}
        source = manifest.source.model_copy(update={"generator_params": params})
        manifest = manifest.model_copy(update={"source": source})
    filters = {key: options.pop(key) for key in list(options) if key in groups}
    entries = fetch_dataset(manifest, filters=filters, keep_going=True, **options)
    ready = [e for e in entries if e.error is None]
    failed = [e for e in entries if e.error is not None]
    for entry in failed:
        print(f"failed: {entry.relative_path}: {entry.error}", file=sys.stderr)
    if not ready:
        raise DownloadError(f"none of the {len(entries)} selected recording(s) of "
                            f"{manifest.name} could be downloaded", path=manifest.manifest_path)  # fmt: skip
    folder = ready[0].path.as_posix().removesuffix(ready[0].relative_path)
    print(f"{manifest.name}: {len(ready)} recording(s) ready in {folder}"
          + (f", {len(failed)} failed" if failed else ""))  # fmt: skip
    return PARTIAL if failed else 0


INFO_OPTIONS = tuple(
    Option(name, help=text)
    for name, text in (
        ("annotation_format", "how events are stored, as in a manifest"),
        ("annotation_path", "file holding the events"),
        ("subject", "subject identifier"),
        ("session", "session identifier"),
        ("run", "run identifier"),
    )
)


class _Collector(logging.Handler):
    """Keeps what the readers log (duplicates dropped, units fixed) for the info report."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def info(path: str, items: list[str], command: str) -> int:
    """Print a recording's channels, rate, duration, events and anything suspicious."""
    options = parse_options(items, INFO_OPTIONS, command)
    reader_notes = _Collector()
    data_logger = logging.getLogger("neurodecode.data")
    data_logger.addHandler(reader_notes)
    try:
        recording = read_recording(path, **options)
    finally:
        data_logger.removeHandler(reader_notes)
    types = pd.Series(recording.ch_types).value_counts()
    events = recording.annotations
    counts = events["description"].value_counts().sort_index()
    findings = reader_notes.messages + suspicious(recording)
    lines = [
        f"file: {recording.source}",
        f"subject/session/run: {recording.subject} / {recording.session} / {recording.run}",
        f"start: {recording.meas_date}",
        f"sampling rate: {recording.sfreq:g} Hz",
        f"duration: {recording.duration:.3f} s ({recording.n_times} samples)",
        f"channels: {recording.n_chans} (" + ", ".join(f"{n} {t}" for t, n in types.items()) + ")",
        "  " + ", ".join(recording.ch_names),
        "amplitude: " + ", ".join(_peaks(recording)),
        f"events: {len(events)}"
        + (" (" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ")" if len(events) else ""),
        "suspicious: " + ("none found" if not findings else ""),
        *(f"  - {finding}" for finding in findings),
    ]
    print("\n".join(lines))
    return 0


def _peaks(recording: Recording) -> list[str]:
    """The largest absolute sample of each unit's channels (``"3.1e-05 V peak"``)."""
    units = pd.Series(recording.ch_units)
    peaks = []
    for unit in units.unique():
        rows = np.flatnonzero(units.to_numpy() == unit)
        peak = np.abs(recording.signal[rows]).max() if recording.n_times else 0.0
        peaks.append(f"{peak:.3g} " + ("in the file's units" if " " in unit else unit) + " peak")
    return peaks or ["no channels"]


def prepare(dataset: str, items: list[str], command: str) -> int:
    """Preprocess a dataset into the window cache; print its QC summary and location."""
    split_overrides(items, command)  # the keys are checked against the preprocessing config
    cache = prepare_dataset(dataset, items)
    print(artifacts.format_summary(cache.qc))
    print(
        f"{len(cache)} windows of {len(cache.ch_names)} channels × {cache.n_times} samples "
        f"at {cache.sfreq:g} Hz in {cache.path}"
    )
    print(f"QC report: {cache.path / 'qc.json'}")
    return PARTIAL if cache.qc["summary"]["failed"] else 0


# command → (job, what it needs, its keys in plain words)
COMMANDS: dict[str, tuple[Callable[[str, list[str], str], int], str, str]] = {
    "fetch": (
        fetch,
        "<dataset>",
        "download and verify a dataset's files. Keys: subjects=[..], sessions=[..], "
        "runs=[..], mirror=<URL or folder>, root=<folder of a local copy>, retries=<n>, "
        "generator_params.<name>=<value> (generated datasets), and any named group of the "
        "manifest's recording pattern as a filter, e.g. split=[eval]",
    ),
    "info": (
        info,
        "<file>",
        "describe a recording and flag anything odd. Keys: "
        + ", ".join(f"{o.name}= ({o.help})" for o in INFO_OPTIONS),
    ),
    "prepare": (
        prepare,
        "<dataset>",
        "preprocess a dataset into the on-disk window cache (fetching it first). Keys: "
        "preprocess=<configs/preprocess name>, subjects=[..], sessions=[..], runs=[..], "
        "num_workers=<n>, cache_dir=<folder>, rebuild=true, and any preprocessing key, "
        "e.g. bandpass.h_freq=30",
    ),
}


def usage(prog: str) -> str:
    """``--help``: each command, what it takes, and its keys."""
    lines = [f"usage: {prog} <command> <dataset or file> [key=value ...]", "", SUMMARY + ":"]
    for name, (_, target, text) in COMMANDS.items():
        lines += ["", f"{prog} {name} {target} [key=value ...]"]
        lines.append(textwrap.fill(text + ".", 92, initial_indent="  ", subsequent_indent="  "))
    lines += ["", textwrap.fill(EXIT_STATUSES + ".", 92)]
    lines += ["", f"example: {prog} fetch eegmmidb subjects=[1] runs=[4,8,12]"]
    return "\n".join(lines)


def run(argv: list[str], prog: str) -> int:
    """Check the words, then run the command they name."""
    job, target, _ = pick(argv[0], COMMANDS, prog)
    command = f"{prog} {argv[0]}"
    if len(argv) < 2 or "=" in argv[1]:
        raise ConfigError(f"{command}: the first argument must be the {target}",
                          hint=f"{command} {target} [key=value ...]")  # fmt: skip
    return job(argv[1], argv[2:], command)


def main(argv: Sequence[str] | None = None, prog: str = "neurodecode data") -> int:
    """Run one data command; return the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or wants_help(argv):
        print(usage(prog))
        return 0 if argv else 2
    setup_logging()
    return report_errors(lambda: run(argv, prog))
