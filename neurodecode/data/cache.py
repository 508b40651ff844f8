"""The on-disk window store: where a cache lives, its key, and reading it as a torch Dataset.

Layout of one cache (``<NEURODECODE_HOME>/window-cache/<dataset>/<key[:16]>/``)::

    shards/<recording>.npy    (n_windows, n_chans, n_times) windows, float32 (np.save format,
                              memory-mapped when read)
    shards/<recording>.json   that recording's window table, channel mask, events and QC;
                              written after its .npy, so its presence marks the shard done
    index.csv                 one row per window: subject, session, run, recording, start_s,
                              end_s, label, description, overlap, event_onset_s,
                              event_offset_s, row (position in the shard)
    events.csv                the labelled events of every recording (for event scoring)
    qc.json                   the QC report of the build
    meta.json                 key, config, channels and positions, rate, window length,
                              units, classes, per-recording masks; written last: a cache
                              without it is unfinished and is resumed, never read

The key is a hash of the manifest, the file selection, the preprocessing config and the
code of the data stages, so an unchanged config reuses the cache and any change builds a
new one next to it. Every file is written to a temporary name and renamed into place.
:mod:`neurodecode.data.build` writes caches (one :func:`~neurodecode.data.transform.
transform_recording` per recording, in parallel); :mod:`neurodecode.data.prepare` fetches a
dataset and builds its cache. See ``docs/architecture.md`` for why plain memory-mapped
``.npy`` shards were chosen.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig

import neurodecode
from neurodecode.data import preprocess
from neurodecode.data.fetch import neurodecode_home
from neurodecode.errors import CacheError

CACHE_FORMAT = "neurodecode-window-cache/1"
SHARDS = "shards"  # sub-folder of the per-recording .npy/.json shards
_ID_COLUMNS = ("subject", "session", "run", "recording", "description")
# Modules whose code shapes the cached windows: their source enters the cache key.
_KEYED_MODULES = (
    "recording",
    "io",
    "annotations",
    "montage",
    "preprocess",
    "artifacts",
    "windows",
    "transform",
    "build",
    "cache",
)

# --------------------------------------------------------------------------- reading


class WindowCache(torch.utils.data.Dataset):
    """Windows of a finished cache, memory-mapped, as a map-style torch Dataset.

    Parameters
    ----------
    path : str or path-like
        A cache folder (the one holding ``meta.json``).

    Attributes
    ----------
    index : pandas.DataFrame
        One row per window: subject, session, run, recording, start_s, end_s, label,
        description, overlap, event_onset_s, event_offset_s, row.
    ch_names : list of str
    ch_pos : numpy.ndarray
        ``(n_chans, 3)`` float32 positions in metres, NaN where unknown: the one form of
        channel positions from the store to the model (the same array in every item, the
        mixture's batches and the detector).
    sfreq : float
    n_times : int
    classes : list of str
        Class names; ``label`` indexes this list (-1: unlabelled).
    events : pandas.DataFrame
        Labelled events per recording (onset, duration, description, label).
    units : str
        What one unit of ``x`` is (e.g. ``"robust z-score (per channel)"``).

    Notes
    -----
    ``__getitem__`` returns ``{"x": float32 (n_chans, n_times), "y": int, "ch_pos": float32
    (n_chans, 3) with NaN for unknown positions, "ch_mask": bool (n_chans,), "subject",
    "session", "recording": str, "start_s": float}``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise CacheError(
                "not a finished window cache (meta.json is missing)",
                path=self.path,
                hint="run `python -m neurodecode.data prepare <dataset>` to build or resume it",
            )
        try:
            self.meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as err:
            raise CacheError(
                f"meta.json cannot be read ({err})",
                path=meta_path,
                hint="rebuild the cache: prepare again with rebuild=true",
            ) from err
        if self.meta.get("format") != CACHE_FORMAT:
            raise CacheError(
                f"unsupported cache format {self.meta.get('format')!r}",
                path=meta_path,
                hint="rebuild the cache with this version",
            )
        self.index = _read_table(self.path / "index.csv")
        self.events = _read_table(self.path / "events.csv")
        self.ch_names: list[str] = list(self.meta["ch_names"])
        self.ch_pos = np.asarray(self.meta["ch_pos"], dtype=np.float32).reshape(-1, 3)
        self.sfreq = float(self.meta["sfreq"])
        self.n_times = int(self.meta["n_times"])
        self.classes: list[str] = list(self.meta["classes"])
        self.units: str = self.meta["units"]
        recordings = list(self.meta["recordings"])
        self._shard_names = recordings
        self._shard_of = (
            self.index["recording"].map({r: i for i, r in enumerate(recordings)}).to_numpy(np.int64)
        )
        self._rows = self.index["row"].to_numpy(np.int64)
        self._labels = self.index["label"].to_numpy(np.int64)
        self._starts = self.index["start_s"].to_numpy(float)
        self._subjects = self.index["subject"].to_numpy(object)
        self._sessions = self.index["session"].to_numpy(object)
        self._masks = torch.tensor(
            np.array(
                [self.meta["recordings"][r]["ch_mask"] for r in recordings], dtype=bool
            ).reshape(len(recordings), len(self.ch_names))
        )
        self._pos = torch.from_numpy(self.ch_pos)
        self._arrays: dict[int, np.ndarray] = {}

    @property
    def key(self) -> str:
        """The cache key (hash of manifest, selection, config and code)."""
        return self.meta["key"]

    @property
    def labels(self) -> np.ndarray:
        """Integer label of every window (for class-balanced sampling)."""
        return self._labels

    @property
    def qc(self) -> dict[str, Any]:
        """The QC report of the build."""
        return json.loads((self.path / "qc.json").read_text())

    def __len__(self) -> int:
        return len(self._rows)

    def _array(self, shard: int) -> np.ndarray:
        array = self._arrays.get(shard)
        if array is None:
            file = self.path / "shards" / f"{self._shard_names[shard]}.npy"
            array = np.load(file, mmap_mode="r")
            self._arrays[shard] = array
        return array

    def __getitem__(self, i: int) -> dict[str, Any]:
        shard = int(self._shard_of[i])
        x = np.array(self._array(shard)[self._rows[i]], dtype=np.float32)
        return {
            "x": torch.from_numpy(x),
            "y": int(self._labels[i]),
            "ch_pos": self._pos,
            "ch_mask": self._masks[shard],
            "subject": self._subjects[i],
            "session": self._sessions[i],
            "recording": self._shard_names[shard],
            "start_s": float(self._starts[i]),
        }

    def __getstate__(self) -> dict[str, Any]:  # memory maps are reopened in each worker
        state = dict(self.__dict__)
        state["_arrays"] = {}
        return state


def _read_table(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={c: str for c in _ID_COLUMNS})
    for column in _ID_COLUMNS:
        if column in table:
            table[column] = table[column].fillna("")
    return table


# --------------------------------------------------------------------------- key


def cache_root() -> Path:
    """``<NEURODECODE_HOME>/window-cache`` (not a valid dataset name, so never a dataset's)."""
    return neurodecode_home() / "window-cache"


def code_version() -> str:
    """neurodecode's version plus a hash of the data-stage sources (edits invalidate caches)."""
    digest = hashlib.sha256(neurodecode.__version__.encode())
    folder = Path(__file__).resolve().parent
    for name in _KEYED_MODULES:
        file = folder / f"{name}.py"
        if file.is_file():
            digest.update(file.read_bytes())
    return f"{neurodecode.__version__}+{digest.hexdigest()[:12]}"


def cache_key(
    config: DictConfig, selection: Sequence[dict[str, Any]], manifest: dict[str, Any] | None
) -> str:
    """SHA-256 over (manifest content, selected files, preprocessing config, code version)."""
    material = {
        "manifest": manifest,
        "selection": list(selection),
        "config": preprocess.config_dict(config),
        "code": code_version(),
    }
    text = json.dumps(material, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def selection_of(entries: Sequence[Any], ids: Sequence[str] | None = None) -> list[dict]:
    """What the cache key records of each recording: its id, identifiers and file stamps.

    The stamps (size, modification time) of the data file and of its annotation file make
    an edited recording or annotation file give a new cache instead of stale labels.
    """
    if ids is None:
        ids = recording_ids([Path(e.path) for e in entries])
    return [
        {
            "recording": r,
            "file": _file_stamp(e.path),
            "annotation": _file_stamp(e.annotation_path),
            "subject": e.subject,
            "session": e.session,
            "run": e.run,
        }
        for r, e in zip(ids, entries, strict=True)
    ]


def _file_stamp(path: Any) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (None when absent): an edited file gets a new cache."""
    if path is None:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def recording_ids(paths: list[Path]) -> list[str]:
    """Readable, unique, file-name-safe ids: paths relative to their common folder."""
    resolved = [p.resolve() for p in paths]
    parents = [str(p.parent) for p in resolved]
    common = Path(os.path.commonpath(parents)) if parents else Path("/")
    ids = []
    for p in resolved:
        relative = p.relative_to(common).as_posix()
        stem = re.sub(r"\.(edf|bdf|gdf|fif|fif\.gz|vhdr|set|txt)$", "", relative, flags=re.I)
        ids.append(re.sub(r"[^A-Za-z0-9._-]+", "__", stem))
    if len(set(ids)) != len(ids):
        ids = [
            f"{i}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"
            for i, p in zip(ids, resolved, strict=True)
        ]
    return ids
