"""Annotation parsers: dataset-specific event files → ``onset, duration, description`` tables.

Every parser named in :data:`ANNOTATION_PARSERS` takes ``(annotation_path, recording)`` and
returns a table with the columns ``onset, duration, description`` (some add ``channels``)
(onset and duration in seconds from the start of the recording). Seizures are described
with SzCORE's ``eventType`` vocabulary (``"sz"``, ``"sz_foc"``, ...); background
(``"bckg"``) rows are dropped from recordings, because background is everything else.
An annotation file that does not fit its recording (the recording is not listed, events
end after the recording) raises :class:`~neurodecode.errors.AnnotationError` naming both.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from neurodecode.data.recording import Recording, empty_annotations
from neurodecode.errors import AnnotationError
from neurodecode.files import write_atomic

logger = logging.getLogger(__name__)

SEIZURE = "sz"
BACKGROUND = "bckg"

# ---------------------------------------------------------------------------- helpers


def _table(onset, duration, description) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "onset": np.asarray(onset, float),
            "duration": np.asarray(duration, float),
            "description": pd.Series(list(description), dtype=str),
        }
    )
    return (
        table.sort_values("onset", kind="stable").reset_index(drop=True)
        if len(table)
        else (empty_annotations())
    )


def _read_table(path: Path, what: str, **options) -> pd.DataFrame:
    """``pandas.read_csv`` whose parse failures become an AnnotationError naming the file."""
    try:
        return pd.read_csv(path, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise AnnotationError(f"not a {what} ({err})", path=path) from err


def check_within(events: pd.DataFrame, recording: Recording, annotation_path) -> None:
    """Raise if an event starts before 0 or ends after the recording (one-sample slack).

    Raises
    ------
    AnnotationError
        Naming the annotation file, the recording file and the first offending event.
    """
    slack = 1.0 / recording.sfreq
    ends = events["onset"] + events["duration"]
    bad = (events["onset"] < -slack) | (ends > recording.duration + slack)
    if bad.any():
        row = events[bad].iloc[0]
        raise AnnotationError(
            f"event {row['description']!r} at {row['onset']:.3f}–"
            f"{row['onset'] + row['duration']:.3f} s lies outside the recording "
            f"{Path(recording.source).name} ({recording.duration:.3f} s long); "
            f"{int(bad.sum())} event(s) do not fit",
            path=annotation_path,
            hint="is this the annotation file of that recording?",
        )


# ---------------------------------------------------------------------------- CHB-MIT


@dataclass
class ChbmitFile:
    """One ``File Name:`` block of a CHB-MIT ``chbNN-summary.txt``."""

    name: str
    start_time: str | None = None
    end_time: str | None = None
    n_seizures: int = 0
    seizures: list[tuple[float, float]] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)


_SEIZURE_TIME = re.compile(
    r"^Seizure\s*(\d+)?\s*(Start|End)\s*Time\s*:\s*([\d.]+)\s*(?:seconds?)?\s*$", re.I
)


def read_chbmit_summary(path: str | Path) -> dict[str, ChbmitFile]:
    """Parse a CHB-MIT ``chbNN-summary.txt`` into one :class:`ChbmitFile` per EDF file.

    Handles both seizure layouts (``Seizure Start Time`` and ``Seizure 1 Start Time``), the
    ``Channels changed:`` blocks that switch the channel list for the files after them
    (``-`` entries are unused slots, kept as listed), and files with no seizures.

    Raises
    ------
    AnnotationError
        If a seizure lacks a start or end, or the count disagrees with ``Number of Seizures``.
    """
    path = Path(path)
    files: dict[str, ChbmitFile] = {}
    channels: list[str] = []
    current: ChbmitFile | None = None
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("*"):
            continue
        if line.lower().startswith(("channels in edf files", "channels changed")):
            channels = []
            current = None
            continue
        channel = re.match(r"^Channel\s+(\d+)\s*:\s*(.*)$", line, re.I)
        if channel:
            channels.append(channel.group(2).strip())
            continue
        seizure = _SEIZURE_TIME.match(line)
        if seizure:
            if current is None:
                raise AnnotationError(
                    f"line {number}: seizure time outside a file block", path=path
                )
            time = float(seizure.group(3))
            if seizure.group(2).lower() == "start":
                current.seizures.append((time, float("nan")))
            elif not current.seizures or not np.isnan(current.seizures[-1][1]):
                raise AnnotationError(f"line {number}: seizure end without a start", path=path)
            else:
                current.seizures[-1] = (current.seizures[-1][0], time)
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "file name":
            current = ChbmitFile(name=value, channels=list(channels))
            files[value] = current
        elif current is not None and key == "file start time":
            current.start_time = value
        elif current is not None and key == "file end time":
            current.end_time = value
        elif current is not None and key == "number of seizures in file":
            current.n_seizures = int(value)
    for entry in files.values():
        if len(entry.seizures) != entry.n_seizures or any(
            np.isnan(end) for _, end in entry.seizures
        ):
            raise AnnotationError(
                f"{entry.name}: 'Number of Seizures in File' is {entry.n_seizures} but "
                f"{len(entry.seizures)} complete start/end pairs are listed",
                path=path,
            )
    return files


def chbmit_summary_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """Seizures of ``recording`` (looked up by its file name) from a CHB-MIT summary."""
    if annotation_path is None:
        raise AnnotationError(
            "the chbmit_summary format needs annotation_path (the chbNN-summary.txt file)",
            path=recording.source,
        )
    files = read_chbmit_summary(annotation_path)
    name = Path(recording.source).name
    if name not in files:
        raise AnnotationError(
            f"recording {name} is not listed in this summary (it lists "
            f"{', '.join(sorted(files)[:3])}{', ...' if len(files) > 3 else ''})",
            path=annotation_path,
        )
    entry = files[name]
    listed = {c for c in entry.channels if c != "-"}
    if listed and listed != set(recording.ch_names) - {"-"}:
        logger.warning(
            "%s: channels differ from those the summary %s lists for it",
            recording.source,
            annotation_path,
        )
    starts = [s for s, _ in entry.seizures]
    return _table(starts, [e - s for s, e in entry.seizures], [SEIZURE] * len(starts))


# ---------------------------------------------------------------------------- WFDB

_WFDB_SEIZURE_START, _WFDB_SEIZURE_END = "[", "]"
# MIT annotation codes (WFDB ecgcodes.h) → symbols, for the codes PhysioNet EEG sets use.
_MIT_SYMBOLS = {22: '"', 32: _WFDB_SEIZURE_START, 33: _WFDB_SEIZURE_END}


def read_wfdb_annotations(path: str | Path) -> tuple[pd.DataFrame, float | None]:
    """Read a WFDB (MIT format) annotation file (``chb01_03.edf.seizures``, ``.edf.event``).

    Each 16-bit little-endian word holds a 6-bit code and a 10-bit sample increment;
    code 59 (SKIP) is followed by a 32-bit increment (high half first), 63 (AUX) by the
    text of the annotation before it, 60–62 (NUM, SUB, CHN) set fields we do not need,
    code 0 only advances time, and a zero word ends the file. (Our own reader: ``wfdb``
    4.3 drops an annotation at sample 0, e.g. eegmmidb's first ``T0``.)

    Returns
    -------
    table : pandas.DataFrame
        Columns ``sample`` (int), ``symbol`` (``"["``, ``"]"``, ``'"'`` for notes, else the
        numeric code) and ``aux_note`` (text, e.g. eegmmidb's ``"T1 duration: 4.1"``).
    fs : float or None
        The sampling rate the file notes (``## time resolution: 256``).

    Raises
    ------
    AnnotationError
        If the file ends inside a multi-word field.
    """
    path = Path(path)
    data = path.read_bytes()
    rows: list[list] = []
    fs = None
    time = 0
    pos = 0
    while pos + 1 < len(data):
        word = data[pos] | (data[pos + 1] << 8)
        pos += 2
        code, value = word >> 10, word & 0x3FF
        if word == 0:
            break
        if code == 59:  # SKIP: 32-bit interval, PDP-11 word order
            if pos + 4 > len(data):
                raise AnnotationError("MIT annotation file ends inside a SKIP", path=path)
            interval = (
                ((data[pos] | data[pos + 1] << 8) << 16) | data[pos + 2] | (data[pos + 3] << 8)
            )
            time += interval - (1 << 32) if interval >= 1 << 31 else interval
            pos += 4
        elif code == 63:  # AUX: `value` bytes of text, padded to even length
            text = data[pos : pos + value].decode("latin-1").rstrip("\x00")
            match = re.fullmatch(r"## time resolution:\s*([\d.]+)", text.strip())
            if match:
                fs = float(match.group(1))
                rows = [r for r in rows if r[0] > 0 or r[1] != '"']  # the note carrying it
            elif rows:
                rows[-1][2] = text
            pos += value + (value & 1)
        elif code not in (60, 61, 62):
            time += value
            if code:
                rows.append([time, _MIT_SYMBOLS.get(code, str(code)), ""])
    return pd.DataFrame(rows, columns=["sample", "symbol", "aux_note"]), fs


def read_wfdb_seizures(path: str | Path, sfreq: float | None = None) -> pd.DataFrame:
    """Seizure intervals (``[`` … ``]`` pairs) from a CHB-MIT ``.seizures`` file.

    Times are samples at the rate the file notes, or ``sfreq`` if it notes none.

    Raises
    ------
    AnnotationError
        If no sampling rate is known or the ``[``/``]`` symbols do not pair up.
    """
    table, fs = read_wfdb_annotations(path)
    fs = fs or sfreq
    if not fs:
        raise AnnotationError("the file notes no sampling rate; pass sfreq", path=path)
    table = table[table["symbol"].isin([_WFDB_SEIZURE_START, _WFDB_SEIZURE_END])]
    symbols = table["symbol"].tolist()
    if symbols != [_WFDB_SEIZURE_START, _WFDB_SEIZURE_END] * (len(symbols) // 2):
        raise AnnotationError(f"seizure start/end symbols do not pair up: {symbols}", path=path)
    samples = table["sample"].to_numpy(float)
    starts, ends = samples[0::2] / fs, samples[1::2] / fs
    return _table(starts, ends - starts, [SEIZURE] * len(starts))


def wfdb_seizure_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """Seizures of ``recording`` from its ``.seizures`` file; none without one.

    (CHB-MIT ships ``.seizures`` files only for recordings that contain seizures.)
    """
    if annotation_path is None:
        return empty_annotations()
    return read_wfdb_seizures(annotation_path, recording.sfreq)


# ---------------------------------------------------------------------------- eegmmidb

_EEGMMIDB_TASKS = {
    (3, 7, 11): ("left_fist", "right_fist"),
    (4, 8, 12): ("imagined_left_fist", "imagined_right_fist"),
    (5, 9, 13): ("both_fists", "both_feet"),
    (6, 10, 14): ("imagined_both_fists", "imagined_both_feet"),
}
_EEGMMIDB_BASELINE = {1: "baseline_eyes_open", 2: "baseline_eyes_closed"}


def eegmmidb_label_map(run: int) -> dict[str, str]:
    """What T0/T1/T2 mean in an eegmmidb run (1, 2 baselines; 3–14 tasks; T0 is rest).

    Raises
    ------
    AnnotationError
        For a run outside 1–14.
    """
    if run in _EEGMMIDB_BASELINE:
        return {"T0": _EEGMMIDB_BASELINE[run]}
    for runs, (t1, t2) in _EEGMMIDB_TASKS.items():
        if run in runs:
            return {"T0": "rest", "T1": t1, "T2": t2}
    raise AnnotationError(f"eegmmidb has runs 1–14, not run {run}")


def eegmmidb_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """The recording's own EDF+ T0/T1/T2 annotations, renamed by what they mean in its run."""
    if recording.run is None or not str(recording.run).isdigit():
        raise AnnotationError(
            "eegmmidb events need the run number (e.g. S001R04.edf)", path=recording.source
        )
    label_map = eegmmidb_label_map(int(recording.run))
    own = recording.annotations
    unknown = sorted(set(own["description"]) - set(label_map))
    if unknown:
        raise AnnotationError(
            f"run {int(recording.run)} has no events {unknown}; expected {sorted(label_map)}",
            path=recording.source,
        )
    return _table(own["onset"], own["duration"], own["description"].map(label_map))


# ---------------------------------------------------------------------------- GDF

GDF_EVENT_CODES = {
    276: "eyes_open",
    277: "eyes_closed",
    768: "trial_start",
    769: "left_hand",
    770: "right_hand",
    771: "feet",
    772: "tongue",
    781: "feedback",
    783: "cue_unknown",
    785: "beep",
    786: "fixation_cross",
    1023: "rejected_trial",
    1072: "eye_movements",
    32766: "new_run",
}
"""GDF event-table codes (BioSig) used by the Graz and BCI Competition recordings."""


def gdf_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """The recording's own GDF event codes, renamed by :data:`GDF_EVENT_CODES`.

    Codes not in the table keep their number as description.
    """
    own = recording.annotations
    names = [GDF_EVENT_CODES.get(int(d), d) if str(d).isdigit() else d for d in own["description"]]
    return _table(own["onset"], own["duration"], names)


# ---------------------------------------------------------------------------- Siena

_SIENA_TIME = re.compile(
    r"^(registration\s+)?(?:seizure\s+)?(start|end)\s*time\s*:?\s*"
    r"(\d{1,2})[.:](\d{2})[.:](\d{2})",
    re.IGNORECASE,
)


def read_siena_seizure_list(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Seizures per EDF file from a Siena Scalp EEG ``Seizures-list-PNxx.txt``.

    Each ``Seizure n`` block names a file, its registration start and the seizure's start
    and end as clock times (``19.58.36``; ``Start time:`` is accepted for
    ``Seizure start time:``); times are turned into seconds from the registration start,
    across midnight where needed.

    Raises
    ------
    AnnotationError
        If a block lacks the file name, the registration start, or a seizure time.
    """
    path = Path(path)
    seizures: dict[str, list[tuple[float, float]]] = {}
    blocks: list[dict] = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if re.match(r"^seizure\s+n\b", line, re.IGNORECASE):
            blocks.append({})
            continue
        name = re.match(r"^file\s*name\s*:\s*(\S+)", line, re.IGNORECASE)
        if name and blocks:
            blocks[-1]["file"] = name.group(1)
        time = _SIENA_TIME.match(line)
        if time and blocks:
            seconds = int(time.group(3)) * 3600 + int(time.group(4)) * 60 + int(time.group(5))
            key = ("registration_" if time.group(1) else "seizure_") + time.group(2).lower()
            blocks[-1][key] = seconds
    day = 24 * 3600
    for number, block in enumerate(blocks, 1):
        needed = {"file", "registration_start", "seizure_start", "seizure_end"}
        if not needed <= set(block):
            raise AnnotationError(
                f"seizure block {number} lacks {', '.join(sorted(needed - set(block)))}",
                path=path,
            )
        onset = (block["seizure_start"] - block["registration_start"]) % day
        duration = (block["seizure_end"] - block["seizure_start"]) % day
        seizures.setdefault(block["file"], []).append((float(onset), float(onset + duration)))
    return seizures


def siena_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """Seizures of ``recording`` (by file name) from its patient's Siena seizure list.

    A recording the list does not name has no seizures.
    """
    if annotation_path is None:
        raise AnnotationError(
            "the siena_seizure_list format needs annotation_path (the Seizures-list-PNxx.txt file)",
            path=recording.source,
        )
    seizures = read_siena_seizure_list(annotation_path).get(Path(recording.source).name, [])
    return _table([s for s, _ in seizures], [e - s for s, e in seizures], [SEIZURE] * len(seizures))


# ---------------------------------------------------------------------------- TUSZ

TUSZ_LABELS = {
    "bckg": BACKGROUND,
    "seiz": SEIZURE,
    "fnsz": "sz_foc",
    "gnsz": "sz_gen",
    "spsz": "sz_foc_a",
    "cpsz": "sz_foc_ia",
    "absz": "sz_gen_nm",
    "tnsz": "sz_gen_m_tonic",
    "cnsz": "sz_gen_m_clonic",
    "tcsz": "sz_gen_m_tonicClonic",
    "atsz": "sz_gen_m_atonic",
    "mysz": "sz_gen_nm_myoclonic",
}
"""TUSZ labels and the SzCORE/ILAE ``eventType`` they map to."""


def read_tusz_csv(path: str | Path) -> pd.DataFrame:
    """Events from a TUSZ ``.csv`` (per channel) or ``.csv_bi`` (whole-recording) file.

    Rows with the same start, stop and label (one per channel in ``.csv``) become one
    event whose ``channels`` column lists the channels; background rows are dropped.

    Raises
    ------
    AnnotationError
        If columns are missing or a label is unknown.
    """
    path = Path(path)
    table = _read_table(path, "TUSZ csv file", comment="#", skipinitialspace=True)
    needed = {"channel", "start_time", "stop_time", "label"}
    if not needed <= set(table.columns):
        raise AnnotationError(f"missing columns {sorted(needed - set(table.columns))}", path=path)
    labels = table["label"].astype(str).str.lower()
    unknown = sorted(set(labels) - set(TUSZ_LABELS))
    if unknown:
        raise AnnotationError(f"unknown TUSZ labels {unknown}", path=path)
    table = table.assign(description=labels.map(TUSZ_LABELS))
    table = table[table["description"] != BACKGROUND]
    grouped = table.groupby(["start_time", "stop_time", "description"], sort=True)
    rows = [
        (start, stop - start, label, ",".join(g["channel"].astype(str)))
        for (start, stop, label), g in grouped
    ]
    events = _table([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    events["channels"] = [r[3] for r in rows]
    return events


def tusz_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """Events of ``recording`` from its TUSZ ``.csv`` or ``.csv_bi`` file."""
    if annotation_path is None:
        raise AnnotationError("no TUSZ csv/csv_bi file for this recording", path=recording.source)
    return read_tusz_csv(annotation_path)


# ---------------------------------------------------------------------------- SzCORE / BIDS

SZCORE_COLUMNS = (
    "onset", "duration", "eventType", "confidence", "channels", "dateTime", "recordingDuration",
)  # fmt: skip
"""Columns of an SzCORE (epilepsy2bids) ``*_events.tsv``, in order."""
_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TSV = "tab-separated events file"


def read_szcore_events(path: str | Path) -> pd.DataFrame:
    """Read an SzCORE BIDS ``*_events.tsv`` as written by epilepsy2bids.

    Returns
    -------
    pandas.DataFrame
        The SzCORE columns; ``confidence`` float (NaN for ``n/a``), ``channels`` a string
        (``""`` for ``n/a``), ``dateTime`` a timestamp (NaT for ``n/a``). Background rows
        are kept.

    Raises
    ------
    AnnotationError
        If a required column is missing or a value cannot be parsed.
    """
    path = Path(path)
    table = _read_table(
        path,
        _TSV,
        sep="\t",
        na_values=["n/a"],
        keep_default_na=False,
        dtype={"channels": str, "eventType": str},
    )
    missing = [c for c in ("onset", "duration", "eventType") if c not in table.columns]
    if missing:
        raise AnnotationError(f"missing SzCORE columns {missing}", path=path)
    for column in SZCORE_COLUMNS:
        if column not in table.columns:
            table[column] = np.nan
    try:
        for column in ("onset", "duration", "confidence", "recordingDuration"):
            table[column] = pd.to_numeric(table[column])
        table["dateTime"] = pd.to_datetime(table["dateTime"], format=_DATETIME_FORMAT)
    except (ValueError, TypeError) as err:
        raise AnnotationError(f"unreadable value ({err})", path=path) from err
    table["channels"] = table["channels"].fillna("").astype(str)
    return table[list(SZCORE_COLUMNS)]


def format_probability(value: float) -> str:
    """A probability with four decimals, or as many more as it takes not to round it to 1
    (0.99997 stays ``0.99997``, never ``1.0000``); only 1 itself is written ``1``."""
    value = float(value)
    if value >= 1.0:
        return "1"
    decimals = 4
    while round(value, decimals) >= 1.0:
        decimals += 1
    return f"{value:.{decimals}f}"


def write_szcore_events(
    path: str | Path,
    events: pd.DataFrame,
    *,
    recording_duration: float,
    date_time: datetime | None = None,
    confidence: float | None = None,
) -> Path:
    """Write events as an SzCORE BIDS ``*_events.tsv`` (epilepsy2bids layout).

    Parameters
    ----------
    path : str or path-like
        Output file; written atomically (a temporary file renamed into place).
    events : pandas.DataFrame
        ``onset``, ``duration`` and either ``eventType`` or ``description`` (e.g. ``"sz"``);
        optional ``confidence`` (0–1) and ``channels`` (comma-separated) columns.
    recording_duration : float
        Length of the recording in seconds (a column of every row).
    date_time : datetime, optional
        Recording start; ``n/a`` when unknown.
    confidence : float, optional
        Confidence for rows without their own.

    Returns
    -------
    pathlib.Path
        The written file. With no events, one ``bckg`` row covers the whole recording, as
        SzCORE expects.
    """
    path = Path(path)
    kind = events["eventType"] if "eventType" in events else events["description"]
    table = pd.DataFrame(
        {
            "onset": np.asarray(events["onset"], float),
            "duration": np.asarray(events["duration"], float),
            "eventType": kind.astype(str).to_numpy(),
            "confidence": events["confidence"].to_numpy(float)
            if "confidence" in events
            else np.full(len(events), np.nan if confidence is None else confidence),
            "channels": events["channels"].astype(str).to_numpy()
            if "channels" in events
            else [""] * len(events),
        }
    )
    if not len(table):
        table = pd.DataFrame(
            {
                "onset": [0.0],
                "duration": [recording_duration],
                "eventType": [BACKGROUND],
                "confidence": [np.nan],
                "channels": [""],
            }
        )

    def number(value: float) -> str:
        return "n/a" if pd.isna(value) else format_probability(value)

    stamp = "n/a" if date_time is None else date_time.strftime(_DATETIME_FORMAT)
    lines = ["\t".join(SZCORE_COLUMNS)]
    for row in table.itertuples(index=False):
        lines.append(
            "\t".join(
                [
                    f"{row.onset:.2f}",
                    f"{row.duration:.2f}",
                    row.eventType,
                    number(row.confidence),
                    row.channels or "n/a",
                    stamp,
                    f"{recording_duration:.2f}",
                ]
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, "\n".join(lines) + "\n")
    return path


def read_bids_events(path: str | Path) -> pd.DataFrame:
    """Events from a BIDS ``*_events.tsv``.

    The description is SzCORE's ``eventType`` (background rows dropped) when present,
    else ``trial_type``, else ``value``.

    Raises
    ------
    AnnotationError
        If the file has no onset/duration or no column to describe events with.
    """
    path = Path(path)
    table = _read_table(path, _TSV, sep="\t", na_values=["n/a"], keep_default_na=False)
    if "eventType" in table.columns:
        table = read_szcore_events(path)
        table = table[table["eventType"] != BACKGROUND]
        events = _table(table["onset"], table["duration"], table["eventType"])
        events["channels"] = table["channels"].to_numpy()
        return events
    for column in ("trial_type", "value"):
        if column in table.columns and {"onset", "duration"} <= set(table.columns):
            duration = pd.to_numeric(table["duration"]).fillna(0.0)
            return _table(table["onset"], duration, table[column].astype(str))
    raise AnnotationError(
        "needs onset, duration and one of eventType, trial_type, value", path=path
    )


def bids_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """Events of a BIDS recording from its ``*_events.tsv`` (none if there is no such file)."""
    if annotation_path is None or not Path(annotation_path).exists():
        return empty_annotations()
    return read_bids_events(annotation_path)


def szcore_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """Seizure events of ``recording`` from an SzCORE ``*_events.tsv``."""
    if annotation_path is None:
        raise AnnotationError("the szcore_tsv format needs annotation_path", path=recording.source)
    return read_bids_events(annotation_path)


def file_events(annotation_path: Path | None, recording: Recording) -> pd.DataFrame:
    """The annotations stored in the recording file itself, unchanged."""
    return recording.annotations


AnnotationParser = Callable[[Path | None, Recording], pd.DataFrame]

ANNOTATION_PARSERS: dict[str, AnnotationParser] = {
    "file": file_events,
    "eegmmidb": eegmmidb_events,
    "chbmit_summary": chbmit_summary_events,
    "wfdb_seizures": wfdb_seizure_events,
    "siena_seizure_list": siena_events,
    "tusz_csv": tusz_events,
    "tusz_csv_bi": tusz_events,
    "szcore_tsv": szcore_events,
    "bids_events": bids_events,
    "gdf": gdf_events,
}
"""Annotation formats by name (a manifest's ``annotation_format``)."""


def parse_annotations(
    annotation_format: str, annotation_path: str | Path | None, recording: Recording
) -> pd.DataFrame:
    """Apply the named parser and check that every event lies within the recording.

    Raises
    ------
    AnnotationError
        For an unknown format, an unreadable file, or events outside the recording.
    """
    if annotation_format not in ANNOTATION_PARSERS:
        raise AnnotationError(
            f"unknown annotation format {annotation_format!r}; known formats are "
            f"{', '.join(sorted(ANNOTATION_PARSERS))}",
            path=annotation_path,
        )
    path = None if annotation_path is None else Path(annotation_path)
    if path is not None and not path.exists():
        raise AnnotationError("annotation file not found", path=path)
    events = ANNOTATION_PARSERS[annotation_format](path, recording)
    check_within(events, recording, path or recording.source)
    return events
