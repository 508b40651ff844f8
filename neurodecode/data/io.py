"""Readers: any supported recording file → :class:`~neurodecode.data.recording.Recording`.

Formats come from the file suffix: every format :func:`mne.io.read_raw` reads (EDF/EDF+,
BDF, GDF, FIF, BrainVision, EEGLAB; MEG: KIT ``.con``/``.sqd``, CTF ``.ds``, ...; EEG:
Neuroscan ``.cnt``, EGI ``.mff``/``.raw``, Nihon Kohden ``.eeg``, Persyst ``.lay``, ...);
Bonn text segments (``.txt``/``.TXT``); THINGS-EEG2's preprocessed epochs (``.npy``, see
:func:`_read_things_eeg2`); and BIDS (a ``sub-*`` recording file or the folder
holding one), whose ``*_events.tsv`` alongside supplies the events.

The returned signal is **float32 in SI units** (volts; MEG magnetometers T, gradiometers
T/m: :attr:`Recording.ch_units`), read in chunks of a minute so that a long recording never
exists as a float64 copy. Channel types are MNE's; channels a reader types EEG by default
(EDF says nothing) are retyped by name (ECG, EOG, EMG, respiration, SpO2, triggers, DC:
:func:`neurodecode.data.montage.channel_type`). Channel names are kept as the file spells
them; :mod:`neurodecode.data.montage` harmonises them later. Channels the file lists twice
with identical samples (CHB-MIT's ``T8-P8``) are kept once. An EDF/BDF header's number of
data records decides how much is read (``-1``: as many as the file holds; ``0``: refused;
see :func:`_edf_records`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.data import montage
from neurodecode.data.annotations import parse_annotations
from neurodecode.data.epoch_arrays import load_array_dict
from neurodecode.data.manifest import list_manifests, load_manifest
from neurodecode.data.recording import Recording
from neurodecode.errors import RecordingError

logger = logging.getLogger(__name__)

FORMATS = {
    ".edf": "edf",
    ".bdf": "bdf",
    ".gdf": "gdf",
    ".fif": "fif",
    ".fif.gz": "fif",
    ".vhdr": "brainvision",
    ".set": "eeglab",
    ".txt": "bonn",
    ".npy": "things_eeg2",
    **dict.fromkeys((".con", ".sqd", ".ds", ".mff", ".cnt", ".lay", ".mefd", ".snirf"), "mne"),
}
"""File suffix (lower case) → format name. ``"mne"``: whatever :func:`mne.io.read_raw` makes
of it, as for any suffix not listed (listed ones are found inside BIDS folders)."""

BONN_SFREQ = 173.61
BONN_N_SAMPLES = 4097
BONN_VOLTS_PER_UNIT = 1e-6
"""Bonn segments hold integer A/D values whose calibration the data set does not publish;
like the literature, we read one unit as one microvolt (so the signal is *approximately*
in volts)."""

VOLTS_PER_UNIT = {
    "v": 1.0, "mv": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "nv": 1e-9,
    "volts": 1.0, "millivolts": 1e-3, "microvolts": 1e-6, "nanovolts": 1e-9,
    "volt": 1.0, "millivolt": 1e-3, "microvolt": 1e-6, "nanovolt": 1e-9,
}  # fmt: skip
"""Volts per unit, keyed by the lower-case spelling of a declared unit (``"uv"``, ``"µv"``,
``"microvolts"``, ...): one table for file headers (GDF) and live streams (LSL)."""

THINGS_EEG2_N_TEST_IMAGES = 200
"""THINGS-EEG2's published test set: 200 images of 200 concepts never shown in training.
Their events are named ``concept_00000`` ... ``concept_00199`` in the release's test order
(the order of the image features published with it); training image ``j`` is
``concept_{200 + j:05d}``, so one image-embedding table (test rows first) labels both."""

_CHUNK_SECONDS = 60.0
_BIDS_DATA_SUFFIXES = ("_eeg", "_meg", "_ieeg")
_ID_KEYS = ("subject", "session", "run")
# File-name conventions of annotation formats (where a loose file's annotations are); the
# identifiers of a dataset's recordings come from its manifest (see infer_ids).
_EEGMMIDB_NAME = re.compile(r"^S\d{3}R\d{2}\.", re.IGNORECASE)
_CHBMIT_NAME = re.compile(r"^chb(\d{2})[a-z]?_", re.IGNORECASE)
_MAX_PATTERN_DEPTH = 6  # path components tried against a manifest's structure pattern


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


def _bids_data_file(path: Path) -> Path | None:
    """The BIDS recording file ``path`` is or holds (a ``sub-*`` folder), else None."""
    if path.is_dir() and _format_of(path) is None:  # not a CTF .ds or EGI .mff recording
        found = [
            p
            for p in sorted(path.iterdir())
            if p.name.startswith("sub-")
            and _format_of(p) not in (None, *_WHOLE_FILE_READERS)
            and _strip_suffix(p).endswith(_BIDS_DATA_SUFFIXES)
        ]
        if len(found) != 1:
            raise RecordingError(
                f"a BIDS folder must hold exactly one recording file, found {len(found)}"
                + (f": {', '.join(p.name for p in found)}" if found else ""),
                path=path,
                hint="pass the recording file itself",
            )
        return found[0]
    if path.name.startswith("sub-") and _strip_suffix(path).endswith(_BIDS_DATA_SUFFIXES):
        return path
    return None


def _strip_suffix(path: Path) -> str:
    name = path.name
    for suffix in FORMATS:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def infer_ids(path: str | Path) -> dict[str, str | None]:
    """Subject, session and run from a file's path.

    BIDS entities in the name (``sub-01_ses-02_..._run-03``); otherwise the named groups of
    the shipped manifests' ``structure.recording`` patterns, matched against the path's last
    components: the pattern that matches the most components wins, and a pattern's last
    components alone match a file outside its dataset's folders (``chb15/chb15_06.edf`` →
    subject ``"15"``, run ``"06"`` by the CHB-MIT manifest; ``S001R04.edf`` alone → run
    ``"04"`` by eegmmidb's); None for what none says.
    """
    path = Path(path)
    if path.name.startswith("sub-"):
        entities = dict(re.findall(r"(sub|ses|run)-([A-Za-z0-9]+)", path.name))
        return dict(zip(_ID_KEYS, (entities.get(k) for k in ("sub", "ses", "run")), strict=True))
    for depth, pattern in _structure_patterns():
        if depth <= len(path.parts):
            found = pattern.fullmatch("/".join(path.parts[-depth:]))
            if found:
                groups = found.groupdict()
                return {key: groups.get(key) or None for key in _ID_KEYS}
    return dict.fromkeys(_ID_KEYS)


@functools.lru_cache(maxsize=1)
def _structure_patterns() -> list[tuple[int, re.Pattern[str]]]:
    """``(path components, pattern)`` for every tail of every shipped manifest's
    ``structure.recording`` pattern, the most components first."""
    tails = []
    for name in list_manifests():
        parts = _top_level_parts(load_manifest(name).structure.recording)
        tails += [(len(parts) - i, re.compile("/".join(parts[i:]))) for i in range(len(parts))]
    return sorted(tails, key=lambda tail: -tail[0])


def _top_level_parts(pattern: str) -> list[str]:
    """A regular expression split at the ``/`` outside groups and character classes."""
    parts, current, depth, in_class, escaped = [], [], 0, False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "/" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    return [*parts, "".join(current)]


def _annotation_file(path: Path, annotation_format: str) -> Path | None:
    """Where a format's annotation file sits next to a recording by convention, if it does."""
    stem = _strip_suffix(path)
    chbmit = _CHBMIT_NAME.match(path.name)
    siena = re.match(r"^(PN\d+)-", path.name, re.IGNORECASE)
    candidates = {
        "bids_events": path.with_name(stem.rsplit("_", 1)[0] + "_events.tsv"),
        "szcore_tsv": path.with_name(stem.rsplit("_", 1)[0] + "_events.tsv"),
        "wfdb_seizures": Path(f"{path}.seizures"),
        "chbmit_summary": chbmit and path.with_name(f"chb{chbmit.group(1)}-summary.txt"),
        "siena_seizure_list": siena and path.with_name(f"Seizures-list-{siena.group(1)}.txt"),
        "tusz_csv_bi": path.with_name(stem + ".csv_bi"),
        "tusz_csv": path.with_name(stem + ".csv"),
    }
    candidate = candidates.get(annotation_format)
    return candidate if candidate and candidate.exists() else None


def _default_annotation_format(path: Path, fmt: str, is_bids: bool) -> str:
    """The annotation format of a recording whose caller names none (see read_recording)."""
    if is_bids:
        return "bids_events"
    if fmt == "gdf":
        return "gdf"
    if _EEGMMIDB_NAME.match(path.name):
        return "eegmmidb"
    for candidate in ("wfdb_seizures", "chbmit_summary", "tusz_csv_bi", "tusz_csv"):
        if _annotation_file(path, candidate) is not None:
            return candidate
    return "file"


def read_recording(
    path: str | Path,
    *,
    annotation_format: str | None = None,
    annotation_path: str | Path | None = None,
    subject: str | None = None,
    session: str | None = None,
    run: str | None = None,
) -> Recording:
    """Read one recording (any supported format) into a :class:`Recording`.

    Parameters
    ----------
    path : str or path-like
        A recording file, or a BIDS folder holding exactly one.
    annotation_format : str, optional
        A name from :data:`neurodecode.data.annotations.ANNOTATION_PARSERS`. By default:
        ``bids_events`` for BIDS, ``gdf`` for GDF, ``eegmmidb`` for ``SxxxRyy.edf``,
        ``wfdb_seizures``/``chbmit_summary`` for CHB-MIT files with a ``.seizures`` file or
        summary alongside, ``tusz_csv_bi``/``tusz_csv`` with such a file alongside, else
        ``file`` (the file's own annotations, unchanged).
    annotation_path : str or path-like, optional
        The annotation file. By default the one the format's convention puts next to the
        recording (BIDS ``*_events.tsv``, ``<file>.seizures``, ``chbNN-summary.txt``,
        ``Seizures-list-PNxx.txt``, ``<stem>.csv_bi``/``.csv``), if present.
    subject, session, run : str, optional
        Identifiers; by default taken from BIDS entities or known file naming.

    Returns
    -------
    Recording
        float32 signal in volts, events in ``annotations``.

    Raises
    ------
    RecordingError
        Unknown format, unreadable, damaged or truncated file, NaN/inf samples.
    ChannelError
        Two channels with the same name but different samples.
    AnnotationError
        The annotation file does not fit the recording.
    """
    path = Path(path)
    if not path.exists():
        raise RecordingError("file not found", path=path)
    bids_file = _bids_data_file(path)
    data_path = bids_file or path
    fmt = _format_of(data_path) or "mne"
    reader = _WHOLE_FILE_READERS.get(fmt)
    recording = reader(data_path) if reader else _read_with_mne(data_path, fmt)
    recording = montage.deduplicate(recording)
    ids = infer_ids(data_path)
    recording.subject = subject if subject is not None else ids["subject"]
    recording.session = session if session is not None else ids["session"]
    recording.run = run if run is not None else ids["run"]
    if annotation_format is None:
        annotation_format = _default_annotation_format(data_path, fmt, bids_file is not None)
    if annotation_path is None:
        annotation_path = _annotation_file(data_path, annotation_format)
    recording.annotations = parse_annotations(annotation_format, annotation_path, recording)
    return recording


def read_channels(path: str | Path) -> tuple[list[str], list[str]]:
    """A recording's channel names and MNE types, from its header alone (no samples).

    EDF and BDF labels are read from the header bytes (a dataset's thousands of files in
    seconds); other formats are opened with MNE without loading data. Types follow
    :func:`read_recording` (:func:`neurodecode.data.montage.channel_type`).

    Raises
    ------
    RecordingError
        Missing, unreadable or unknown file.
    """
    path = Path(path)
    if not path.exists():
        raise RecordingError("file not found", path=path)
    data_path = _bids_data_file(path) or path
    fmt = _format_of(data_path) or "mne"
    if fmt == "bonn":
        return ["EEG"], ["eeg"]
    if fmt == "things_eeg2":
        names = [str(n) for n in load_array_dict(data_path)["ch_names"]]
        return names, ["eeg"] * len(names)
    if fmt in ("edf", "bdf"):
        names = _original_names(_edf_labels(data_path))
        return names, [montage.channel_type(name) for name in names]
    raw = _open_with_mne(data_path, fmt)
    names = _original_names(raw.ch_names)
    types = raw.get_channel_types()
    return names, [montage.channel_type(n, t) for n, t in zip(names, types, strict=True)]


def _read_bonn(path: Path) -> Recording:
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except ValueError as err:
        raise RecordingError(
            f"not a Bonn segment: expected one number per line ({err})", path=path
        ) from err
    if values.ndim != 1 or values.size == 0:
        raise RecordingError("not a Bonn segment: expected one number per line", path=path)
    if values.size != BONN_N_SAMPLES:
        logger.warning("%s: %d samples, Bonn segments have %d", path, values.size, BONN_N_SAMPLES)
    signal = (values * BONN_VOLTS_PER_UNIT).astype(np.float32)[np.newaxis]
    _check_finite(signal, ["EEG"], BONN_SFREQ, path)
    return Recording(
        signal=signal,
        sfreq=BONN_SFREQ,
        ch_names=["EEG"],
        ch_types=["eeg"],
        source=path,
        ch_pos=np.full((1, 3), np.nan),
    )


def _read_things_eeg2(path: Path) -> Recording:
    """THINGS-EEG2 preprocessed epochs as one recording: the epochs one after another, an
    event at each image onset named by its concept (see :data:`THINGS_EEG2_N_TEST_IMAGES`).

    The release's ``preprocessed_eeg_data`` is ``(images, repetitions, channels, times)``,
    baseline-corrected and whitened by the authors (multivariate noise normalisation), so
    its values are in whitened units, not volts: they are kept unchanged, and the
    ``things_eeg2`` preprocessing applies no amplitude check.
    """
    content = load_array_dict(path)
    missing = {"preprocessed_eeg_data", "ch_names", "times"} - set(content)
    if missing:
        raise RecordingError(f"not a THINGS-EEG2 file: no {', '.join(sorted(missing))}", path=path)
    epochs = np.asarray(content["preprocessed_eeg_data"], dtype=np.float32)
    times = np.asarray(content["times"], dtype=float)
    if epochs.ndim != 4 or epochs.shape[3] != times.size or times.size < 2:
        raise RecordingError(
            f"expected (images, repetitions, channels, {times.size}) epochs, got {epochs.shape}",
            path=path,
        )
    n_images, n_repetitions, n_chans, n_samples = epochs.shape
    first = 0 if "test" in path.name else THINGS_EEG2_N_TEST_IMAGES
    sfreq = float(np.round(1.0 / np.median(np.diff(times)), 6))
    starts = np.arange(n_images * n_repetitions) * n_samples / sfreq
    concepts = np.repeat(np.arange(first, first + n_images), n_repetitions)
    signal = epochs.reshape(n_images * n_repetitions, n_chans, n_samples)
    signal = np.ascontiguousarray(signal.transpose(1, 0, 2).reshape(n_chans, -1))
    names = [str(name) for name in content["ch_names"]]
    _check_finite(signal, names, sfreq, path)
    annotations = pd.DataFrame(
        {
            "onset": starts - times[0],
            "duration": 0.0,
            "description": [f"concept_{c:05d}" for c in concepts],
        }
    )
    return Recording(signal, sfreq, names, ["eeg"] * n_chans, path, annotations)


_WHOLE_FILE_READERS = {"bonn": _read_bonn, "things_eeg2": _read_things_eeg2}
"""Formats MNE does not read, read whole by neurodecode's own readers."""


def _open_with_mne(path: Path, fmt: str) -> Any:
    """Open ``path`` with MNE without loading samples (``fmt`` ``"mne"``: by its suffix).

    Every format :func:`mne.io.read_raw` knows is read through it, plus EGI's simple
    binary ``.raw``. EDF/BDF files keep the data records their header declares (see
    :func:`_edf_records`).
    """
    import mne

    records = _edf_records(path, 2 if fmt == "edf" else 3) if fmt in ("edf", "bdf") else None
    read = mne.io.read_raw_egi if path.suffix.lower() == ".raw" else mne.io.read_raw
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = read(path, preload=False, verbose="warning")
    except Exception as err:  # MNE's readers raise many unrelated types on damaged files
        if fmt == "mne" and str(err).startswith("Unsupported file type"):
            raise RecordingError(
                f"unknown recording format {''.join(path.suffixes) or '(no suffix)'!r}",
                path=path,
                hint="use a format mne.io.read_raw reads, Bonn .txt, or a BIDS folder",
            ) from err
        what = "" if fmt == "mne" else f" {fmt.upper()}"
        raise RecordingError(f"MNE cannot read this{what} file: {err}", path=path) from err
    if records is not None:
        keep = int(round(records * raw.info["sfreq"]))  # ``records``: seconds of signal
        if 0 < keep < raw.n_times:
            raw.crop(tmax=(keep - 1) / raw.info["sfreq"])
    if fmt in ("edf", "bdf") and any("outside" in str(w.message) for w in caught):
        # MNE cut annotations at the end of the data (its only warning saying "outside"):
        # parse them again to tell a truncated file from annotations past the recording.
        _check_own_annotations(path, raw.n_times / float(raw.info["sfreq"]))
    return raw


def _recording_from_raw(
    raw: Any, fmt: str, signal: np.ndarray, names: list[str], path: Path
) -> Recording:
    """A Recording of ``signal`` with the header, annotations and positions of ``raw``."""
    sfreq = float(raw.info["sfreq"])
    annotations = raw.annotations
    offset = raw.first_time if annotations.orig_time is not None else 0.0
    return Recording(
        signal=signal,
        sfreq=sfreq,
        ch_names=names,
        ch_types=[
            montage.channel_type(name, kind)
            for name, kind in zip(names, raw.get_channel_types(), strict=True)
        ],
        source=path,
        annotations=pd.DataFrame(
            {
                "onset": np.asarray(annotations.onset, float) - offset,
                "duration": np.asarray(annotations.duration, float),
                "description": pd.Series(list(annotations.description), dtype=str),
            }
        ),
        meas_date=raw.info["meas_date"],
        ch_pos=_positions(raw.info, names),
    )


def _read_with_mne(path: Path, fmt: str) -> Recording:
    raw = _open_with_mne(path, fmt)
    try:
        signal = _load_float32(raw)
    except Exception as err:  # MNE's readers raise many unrelated types on damaged files
        raise RecordingError(f"MNE cannot read this file: {err}", path=path) from err
    names = _original_names(raw.ch_names)
    if fmt == "gdf":
        signal *= _gdf_unit_correction(path, raw)[:, np.newaxis].astype(np.float32)
    _check_finite(signal, names, float(raw.info["sfreq"]), path)
    return _recording_from_raw(raw, fmt, signal, names, path)


def _load_float32(raw: Any) -> np.ndarray:
    out = np.empty((len(raw.ch_names), raw.n_times), dtype=np.float32)
    step = max(1, int(raw.info["sfreq"] * _CHUNK_SECONDS))
    for start in range(0, raw.n_times, step):
        stop = min(start + step, raw.n_times)
        out[:, start:stop] = raw.get_data(start=start, stop=stop)
    return out


def _original_names(names: list[str]) -> list[str]:
    """Undo MNE's running numbers (``T8-P8-0``, ``T8-P8-1``) on duplicated channel names.

    Placeholder names (CHB-MIT's unused ``-`` slots) keep MNE's unique ``--0``, ``--1``:
    they name no electrode, so there is nothing to merge or to refuse.
    """
    groups: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, name in enumerate(names):
        match = re.match(r"^(.*)-(\d+)$", name)
        if match:
            groups[match.group(1)].append((int(match.group(2)), i))
    out = list(names)
    for base, members in groups.items():
        numbers = sorted(number for number, _ in members)
        placeholder = not base.strip("-. ")
        renamed = len(members) > 1 and numbers == list(range(len(members)))
        if renamed and base not in names and not placeholder:
            for _, i in members:
                out[i] = base
    return out


def _edf_records(path: Path, bytes_per_sample: int) -> float:
    """The seconds of signal an EDF/BDF file holds: its header's data records, checked.

    The header's number of data records decides, one way for every file:

    * ``-1`` (unknown, as EDF+ allows while recording): the complete records the file
      size holds are counted and used; a partial last record is dropped with a warning.
    * ``0``: refused, the header says the file holds no data.
    * ``n > 0``: a file shorter than ``n`` records is refused as truncated; bytes beyond
      them are ignored with a warning.

    Raises
    ------
    RecordingError
        Damaged header, no data records, or truncated file.
    """
    with path.open("rb") as file:
        head = file.read(256)
        try:
            header_bytes, n_records = int(head[184:192]), int(head[236:244])
            record_s, n_signals = float(head[244:252]), int(head[252:256])
            file.seek(256 + 216 * n_signals)
            samples = [int(file.read(8)) for _ in range(n_signals)]
        except ValueError as err:
            raise RecordingError(
                "the EDF/BDF header is damaged: a numeric field is not a number", path=path
            ) from err
    record_bytes = max(sum(samples) * bytes_per_sample, 1)
    actual = path.stat().st_size
    complete = max(0, actual - header_bytes) // record_bytes
    if n_records == 0 or (n_records == -1 and complete == 0):
        raise RecordingError(
            "the header declares no data records" if n_records == 0 else
            "the header leaves the number of data records open (-1) and the file holds none",
            path=path,
            hint="an EDF file still being recorded declares -1 records; a finished one, "
            "their number",
        )  # fmt: skip
    if n_records < -1:
        raise RecordingError(f"the header declares {n_records} data records", path=path)
    used = complete if n_records == -1 else n_records
    expected = header_bytes + used * record_bytes
    if n_records == -1:
        logger.info("%s: header declares -1 data records; %d counted", path, complete)
    elif actual < expected:
        raise RecordingError(
            f"truncated: the header declares {n_records} data records ({expected} bytes) but "
            f"the file holds {actual} bytes ({complete} complete records)",
            path=path,
            hint="download the file again and check its checksum",
        )
    if actual > expected:
        logger.warning(
            "%s: %d bytes beyond the %d data records used; ignored",
            path,
            actual - expected,
            used,
        )
    return used * record_s


def _check_own_annotations(path: Path, duration: float) -> None:
    """EDF+ annotations ending after the data mean data records are missing."""
    import mne

    if not _has_annotation_signal(path):  # plain EDF/BDF: nothing to check, and MNE would
        return  # scan the whole file (memory and time grow with its length)
    own = mne.read_annotations(path)
    if not len(own):
        return
    ends = np.asarray(own.onset) + np.asarray(own.duration)
    last = int(np.argmax(ends))
    if ends[last] > duration + 1e-6:
        raise RecordingError(
            f"truncated: the file's own annotation {own.description[last]!r} "
            f"({own.onset[last]:.2f} s + {own.duration[last]:.2f} s) ends at "
            f"{ends[last]:.2f} s but the data stop at {duration:.2f} s",
            path=path,
            hint="download the file again and check its checksum",
        )


def _edf_labels(path: Path, annotations: bool = False) -> list[str]:
    """The signal labels of an EDF/BDF header, its annotation signal left out unless asked.

    Labels are numbered like MNE's (``T8-P8-0``, ``T8-P8-1``) where the header repeats one.
    """
    with path.open("rb") as file:
        head = file.read(256)
        try:
            n_signals = int(head[252:256])
        except ValueError as err:
            raise RecordingError(
                "the EDF/BDF header is damaged: the number of signals is not a number", path=path
            ) from err
        text = file.read(16 * n_signals).decode("latin-1")
    labels = [text[16 * i : 16 * (i + 1)].strip() for i in range(n_signals)]
    if not annotations:
        labels = [n for n in labels if n not in ("EDF Annotations", "BDF Annotations")]
    counts = {n: labels.count(n) for n in labels}
    seen: dict[str, int] = defaultdict(int)
    out = []
    for name in labels:
        out.append(f"{name}-{seen[name]}" if counts[name] > 1 else name)
        seen[name] += 1
    return out


def _has_annotation_signal(path: Path) -> bool:
    """Whether an EDF/BDF header lists an ``EDF Annotations``/``BDF Annotations`` signal."""
    try:
        labels = _edf_labels(path, annotations=True)
    except RecordingError:
        return True  # let the full check (and MNE) report the damage
    return any(n in ("EDF Annotations", "BDF Annotations") for n in labels)


def _gdf_unit_correction(path: Path, raw: Any) -> np.ndarray:
    """Per-channel factor fixing MNE's units for GDF 1.x files.

    MNE's GDF 1.x reader scales by 1e-6 only when the physical dimension is spelt ``uV``;
    BioSig writes ``µV`` (Latin-1 ``\\xb5V``), which MNE then reads as volts. We read the
    dimensions from the header and divide out whatever factor MNE applied.
    """
    n = len(raw.ch_names)
    with path.open("rb") as file:
        head = file.read(256)
        if not head.startswith(b"GDF 1."):
            return np.ones(n)
        n_signals = int.from_bytes(head[252:256], "little")
        file.seek(256 + 96 * n_signals)  # after the labels (16 bytes) and transducers (80)
        dims = [file.read(8).decode("latin-1").strip("\x00 ") for _ in range(n_signals)]
    extras = getattr(raw, "_raw_extras", [{}])[0]
    applied = np.asarray(extras.get("units", np.ones(n_signals)), float)
    if len(applied) != n or n_signals != n:
        logger.warning(
            "%s: cannot match the GDF header's %d channels with MNE's %d; units left as MNE "
            "read them (check the amplitudes)",
            path,
            n_signals,
            n,
        )
        return np.ones(n)
    factors = np.ones(n)
    for i, dim in enumerate(dims):
        factor = VOLTS_PER_UNIT.get(dim.lower())
        if factor is None:  # e.g. an event or non-electrical channel
            logger.warning(
                "%s: channel %r has physical unit %r; left as MNE read it",
                path,
                raw.ch_names[i],
                dim,
            )
            continue
        factors[i] = factor / applied[i]
    corrected = [raw.ch_names[i] for i in np.flatnonzero(factors != 1.0)]
    if corrected:
        logger.info(
            "%s: GDF units %s applied (MNE had read them as volts): %s",
            path,
            sorted(set(dims)),
            ", ".join(corrected),
        )
    return factors


def _check_finite(
    signal: np.ndarray, names: list[str], sfreq: float, path: Path, first_sample: int = 0
) -> None:
    """Refuse NaN/inf samples, naming the channels and the first one's time in the file
    (``signal`` starts at sample ``first_sample`` of the recording)."""
    bad = ~np.isfinite(signal)
    if bad.any():
        channels = [names[i] for i in np.flatnonzero(bad.any(axis=1))]
        first = (first_sample + np.flatnonzero(bad.any(axis=0))[0]) / sfreq
        raise RecordingError(
            f"{int(bad.sum())} NaN/inf samples in channel(s) {', '.join(channels[:10])}"
            f"{' ...' if len(channels) > 10 else ''} (first at {first:.3f} s)",
            path=path,
        )


def _positions(info: Any, names: list[str]) -> np.ndarray:
    """Positions from the file where it has them (head frame), else the standard montage."""
    import mne

    out = montage.channel_positions(names)
    dev_head = info.get("dev_head_t")
    for i, ch in enumerate(info["chs"]):
        loc = np.asarray(ch["loc"][:3], float)
        if not np.all(np.isfinite(loc)) or not np.any(loc):
            continue
        if ch["coord_frame"] == mne.io.constants.FIFF.FIFFV_COORD_DEVICE:
            if dev_head is None:
                continue
            loc = mne.transforms.apply_trans(dev_head, loc)
        out[i] = loc
    return out


# ---------------------------------------------------------------------------- info command


def suspicious(recording: Recording) -> list[str]:
    """Plain-words findings worth a look: flat or clipped channels, unknown EEG names."""
    findings = []
    signal = recording.signal
    flat = [
        n
        for n, row in zip(recording.ch_names, signal, strict=True)
        if row.size and float(row.max() - row.min()) == 0.0
    ]
    if flat:
        findings.append(f"flat channels (constant): {', '.join(flat)}")
    clipped = []
    for name, row in zip(recording.ch_names, signal, strict=True):
        if row.size < 100 or row.max() == row.min():
            continue
        at_limit = np.count_nonzero(row == row.max()) + np.count_nonzero(row == row.min())
        if at_limit > max(10, 0.001 * row.size):
            clipped.append(f"{name} ({100 * at_limit / row.size:.1f}% at min/max)")
    if clipped:
        findings.append(f"possibly clipped: {', '.join(clipped)}")
    unknown = [
        n
        for n, t in zip(recording.ch_names, recording.ch_types, strict=True)
        if t == "eeg" and montage.try_canonical_name(n) is None
    ]
    if unknown:
        findings.append(f"EEG channels with non-10-05 names: {', '.join(unknown)}")
    return findings


# ---------------------------------------------------------------------------- reading in pieces


@dataclass
class RecordingReader:
    """A recording opened for reading in pieces, so that long files fit in bounded memory.

    Attributes
    ----------
    header : Recording
        Everything :func:`read_recording` returns except the samples (``signal`` has no
        columns): rate, channels, positions, events, identifiers.
    n_times : int
        Samples per channel in the file.
    """

    header: Recording
    n_times: int
    _raw: Any = field(repr=False)
    _rows: list[int] = field(repr=False)
    _factors: np.ndarray | None = field(default=None, repr=False)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_times / self.header.sfreq

    def read(self, start: int, stop: int, *, finite: bool = True) -> np.ndarray:
        """Samples ``start:stop`` of every channel: float32 volts, ``(n_chans, stop - start)``.

        ``finite=False`` returns NaN/inf samples as they are, for a caller that deals with
        them (prediction bridges them and leaves the windows holding them unscored).

        Raises
        ------
        RecordingError
            Unreadable data, or NaN/inf samples in that stretch (their time in the file).
        """
        start, stop = max(0, int(start)), min(self.n_times, int(stop))
        try:
            data = self._raw.get_data(picks=self._rows, start=start, stop=stop)
        except Exception as err:  # MNE raises many unrelated types on damaged files
            raise RecordingError(
                f"cannot read samples {start}-{stop}: {err}", path=self.header.source
            ) from err
        data = data.astype(np.float32)
        if self._factors is not None:
            data *= self._factors[:, np.newaxis]
        if finite:
            _check_finite(data, self.header.ch_names, self.header.sfreq, self.header.source, start)
        return data


def open_recording(
    path: str | Path,
    *,
    annotation_format: str | None = None,
    annotation_path: str | Path | None = None,
    subject: str | None = None,
    session: str | None = None,
    run: str | None = None,
) -> RecordingReader:
    """Open a recording like :func:`read_recording` without loading its samples.

    Takes the same arguments. Channels listed twice are kept once when their first minute
    is identical (:func:`read_recording` compares them whole). Bonn segments, which are
    tiny, are read at once.

    Raises
    ------
    RecordingError, ChannelError, AnnotationError
        As :func:`read_recording`, for what the header and annotations reveal.
    """
    import mne

    path = Path(path)
    if not path.exists():
        raise RecordingError("file not found", path=path)
    bids_file = _bids_data_file(path)
    data_path = bids_file or path
    fmt = _format_of(data_path) or "mne"
    if fmt in _WHOLE_FILE_READERS:
        recording = read_recording(
            path,
            annotation_format=annotation_format,
            annotation_path=annotation_path,
            subject=subject,
            session=session,
            run=run,
        )
        info = mne.create_info(recording.ch_names, recording.sfreq, "misc")
        raw = mne.io.RawArray(recording.signal, info, verbose="error")
        header = dataclasses.replace(recording, signal=recording.signal[:, :0])
        return RecordingReader(header, recording.n_times, raw, list(range(recording.n_chans)))
    raw = _open_with_mne(data_path, fmt)
    names = _original_names(raw.ch_names)
    factors = _gdf_unit_correction(data_path, raw).astype(np.float32) if fmt == "gdf" else None
    first_chunk = raw.get_data(stop=min(raw.n_times, int(raw.info["sfreq"] * _CHUNK_SECONDS)))
    probe = _recording_from_raw(raw, fmt, first_chunk.astype(np.float32), names, data_path)
    kept = montage.deduplicate(probe)
    rows = [names.index(name) for name in kept.ch_names]  # first copy of each name
    header = dataclasses.replace(kept, signal=kept.signal[:, :0])
    ids = infer_ids(data_path)
    header.subject = subject if subject is not None else ids["subject"]
    header.session = session if session is not None else ids["session"]
    header.run = run if run is not None else ids["run"]
    if annotation_format is None:
        annotation_format = _default_annotation_format(data_path, fmt, bids_file is not None)
    if annotation_path is None:
        annotation_path = _annotation_file(data_path, annotation_format)
    # parsers check events against the duration: a read-only zero view of the full length
    full_length = np.broadcast_to(np.float32(0), (header.n_chans, raw.n_times))
    header.annotations = parse_annotations(
        annotation_format, annotation_path, dataclasses.replace(header, signal=full_length)
    )
    return RecordingReader(
        header, int(raw.n_times), raw, rows, None if factors is None else factors[rows]
    )
