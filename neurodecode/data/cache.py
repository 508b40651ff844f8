"""The on-disk window cache: build it in parallel, resume it, read it as a torch Dataset.

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
See ``docs/architecture.md`` for why plain memory-mapped ``.npy`` shards were chosen.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import datetime as dt
import errno
import functools
import hashlib
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

import neurodecode
from neurodecode import jsonio
from neurodecode.data import artifacts, preprocess, windows
from neurodecode.errors import CacheError, ConfigError, NeurodecodeError
from neurodecode.files import temporary_sibling, write_atomic

logger = logging.getLogger(__name__)

CACHE_FORMAT = "neurodecode-window-cache/1"
_ID_COLUMNS = ("subject", "session", "run", "recording", "description")
_BUILD_OPTIONS = (
    "preprocess",
    "subjects",
    "sessions",
    "runs",
    "num_workers",
    "cache_dir",
    "rebuild",
)
# Modules whose code shapes the cached windows: their source enters the cache key.
_KEYED_MODULES = (
    "recording",
    "io",
    "annotations",
    "montage",
    "preprocess",
    "artifacts",
    "windows",
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
        ``(n_chans, 3)`` positions in metres (NaN where unknown).
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
    (n_chans, 3) with unknown positions as 0, "ch_mask": bool (n_chans,), "subject",
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
        self.ch_pos = np.asarray(self.meta["ch_pos"], dtype=float).reshape(-1, 3)
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
        self._pos = torch.from_numpy(np.nan_to_num(self.ch_pos).astype(np.float32))
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


# --------------------------------------------------------------------------- building


@dataclasses.dataclass
class _Job:
    """Everything a worker needs to turn one recording into one shard (picklable)."""

    recording: str
    path: Path
    subject: str | None
    session: str | None
    run: str | None
    annotation_path: Path | None
    annotation_format: str | None
    recording_label: str | None
    label_map: dict[str, int]
    config: dict[str, Any]
    target: list[str] | str | None
    shard_dir: Path


def cache_root() -> Path:
    """``<NEURODECODE_HOME>/window-cache`` (not a valid dataset name, so never a dataset's)."""
    from neurodecode.data.fetch import neurodecode_home

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
        ids = _recording_ids([Path(e.path) for e in entries])
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


def build_cache(
    entries: Sequence[Any],
    config: DictConfig,
    root: str | os.PathLike[str],
    *,
    dataset: str,
    manifest: Any = None,
    annotation_format: str | None = None,
    num_workers: int = 1,
    rebuild: bool = False,
    progress: bool = True,
) -> WindowCache:
    """Preprocess, window and cache recordings; reuse or resume an existing cache.

    Parameters
    ----------
    entries : sequence
        Recordings to include: objects with ``path``, ``subject``, ``session``, ``run``,
        ``annotation_path`` (e.g. :class:`neurodecode.data.fetch.RecordingEntry`).
    config : DictConfig
        Preprocessing config (:func:`neurodecode.data.preprocess.load_preprocess_config`).
    root : path-like
        Folder holding this dataset's caches; the cache goes to ``root/<key[:16]>``.
    dataset : str
        Dataset name (for the report).
    manifest : Manifest, optional
        Its content enters the key; its label maps are used when the config has none.
    annotation_format : str, optional
        Parser for the readers (default: the manifest's).
    num_workers : int
        Processes working on recordings in parallel; 0 works in this process.
    rebuild : bool
        Discard a finished cache with the same key and build it again.

    Returns
    -------
    WindowCache

    Raises
    ------
    CacheError
        Disk full or unwritable (finished shards are kept; a rerun resumes), or no
        recording produced any window (see the QC report).
    """
    if not entries:
        raise CacheError("no recordings to prepare", path=root)
    if annotation_format is None and manifest is not None:
        annotation_format = manifest.annotation_format
    entries = list(entries)
    ids = _recording_ids([Path(e.path) for e in entries])
    label_map, classes = _label_plan(config, manifest)
    selection = selection_of(entries, ids)
    manifest_content = manifest.model_dump(mode="json") if manifest is not None else None
    key = cache_key(config, selection, manifest_content)
    directory = Path(root) / key[:16]
    if (directory / "meta.json").is_file() and not rebuild:
        logger.info("reusing the cache %s (same manifest, files, config and code)", directory)
        return WindowCache(directory)
    if rebuild and (directory / "meta.json").is_file():
        (directory / "meta.json").unlink()
        for done in (directory / "shards").glob("*.json"):
            done.unlink()
    shard_dir = directory / "shards"
    _make_dirs(shard_dir)

    target = config.channels.target
    if target is None:
        target = _first_channels(entries, config)
    config_plain = preprocess.config_dict(config)
    jobs = [
        _Job(
            recording=r,
            path=Path(e.path),
            subject=e.subject,
            session=e.session,
            run=e.run,
            annotation_path=getattr(e, "annotation_path", None),
            annotation_format=annotation_format,
            recording_label=_recording_label(e, label_map),
            label_map=label_map,
            config=config_plain,
            target=target,
            shard_dir=shard_dir,
        )
        for r, e in zip(ids, entries, strict=True)
    ]
    results = _run_jobs(jobs, num_workers, progress, dataset)
    return _finalise(directory, results, jobs, config, key=key, dataset=dataset, classes=classes)


def _run_jobs(
    jobs: list[_Job], num_workers: int, progress: bool, dataset: str
) -> dict[str, dict[str, Any]]:
    """Build every shard not yet done; return each recording's shard summary (or failure)."""
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for job in jobs:
        done = job.shard_dir / f"{job.recording}.json"
        if done.is_file():
            results[job.recording] = json.loads(done.read_text())
        else:
            todo.append(job)
    if results:
        logger.info("resuming: %d of %d recordings already done", len(results), len(jobs))
    bar = tqdm(
        total=len(jobs),
        initial=len(results),
        desc=f"prepare {dataset}",
        unit="rec",
        disable=not progress,
    )
    try:
        if num_workers <= 0 or len(todo) <= 1:
            for job in todo:
                results[job.recording] = _checked(_build_shard(job))
                bar.update()
        else:
            with cf.ProcessPoolExecutor(max_workers=num_workers) as pool:
                futures = {pool.submit(_build_shard, job): job for job in todo}
                try:
                    for future in cf.as_completed(futures):
                        results[futures[future].recording] = _checked(future.result())
                        bar.update()
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return results


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("fatal"):
        raise CacheError(
            result["fatal"],
            path=result.get("path"),
            hint="free disk space or set cache_dir=...; finished recordings are "
            "kept and a rerun resumes",
        )
    return result


def _build_shard(job: _Job) -> dict[str, Any]:
    """Worker: read, preprocess, window and write one recording. Never raises for bad data."""
    from neurodecode.data.io import read_recording

    config = _config(json.dumps(job.config, sort_keys=True))
    qc = artifacts.RecordingQC(
        recording=job.recording,
        source=str(job.path),
        subject=job.subject,
        session=job.session,
        run=job.run,
    )
    try:
        recording = read_recording(
            job.path,
            annotation_format=job.annotation_format,
            annotation_path=job.annotation_path,
            subject=job.subject,
            session=job.session,
            run=job.run,
        )
        if job.recording_label is not None:
            recording.annotations = pd.DataFrame(
                {
                    "onset": [0.0],
                    "duration": [recording.duration],
                    "description": [job.recording_label],
                }
            )
        shard = process_recording(recording, config, job.label_map, qc, job.target)
    except NeurodecodeError as err:
        qc.fail(err)
        return {"qc": qc.to_dict(), "n_windows": 0}
    except Exception as err:  # a bug or a library error: report it with the file, go on
        logger.exception("unexpected error on %s", job.path)
        qc.fail(err)
        return {"qc": qc.to_dict(), "n_windows": 0}
    summary = {
        "qc": qc.to_dict(),
        "n_windows": len(shard.table),
        "layout": {"ch_names": shard.ch_names, "sfreq": shard.sfreq, "n_times": shard.n_times},
        "ch_mask": shard.ch_mask.tolist(),
        "windows": shard.table.to_dict(orient="list"),
        "events": shard.events.to_dict(orient="list"),
        "duration_s": recording.duration,
        "source": str(job.path),
    }
    try:
        _write_shard(job.shard_dir, job.recording, shard.x, summary)
    except OSError as err:
        reason = (
            "the disk is full"
            if err.errno == errno.ENOSPC
            else f"cannot write the cache ({err.strerror or err})"
        )
        return {
            "fatal": f"{reason} while writing {job.recording}",
            "path": str(job.shard_dir),
            "qc": qc.to_dict(),
            "n_windows": 0,
        }
    return summary


@functools.lru_cache(maxsize=4)
def _config(text: str) -> DictConfig:
    """The job's config as a DictConfig, built once per worker process."""
    return OmegaConf.create(json.loads(text))


def _write_shard(shard_dir: Path, recording: str, x: np.ndarray, summary: dict) -> None:
    """Write ``<recording>.npy`` then ``<recording>.json``, each via a temporary file."""
    final = shard_dir / f"{recording}.npy"
    tmp = temporary_sibling(final)
    try:
        with open(tmp, "wb") as file:  # the .npy format, memory-mapped when read
            np.lib.format.write_array(file, np.ascontiguousarray(x), allow_pickle=False)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    write_atomic(shard_dir / f"{recording}.json", json.dumps(summary, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


@dataclasses.dataclass
class Shard:
    """The cached content of one recording.

    Attributes
    ----------
    x : numpy.ndarray
        ``(n_windows, n_chans, n_times)`` kept windows, scaled and clipped.
    table : pandas.DataFrame
        One row per kept window (:data:`neurodecode.data.windows.WINDOW_COLUMNS`).
    ch_mask : numpy.ndarray
        Bool per channel: True where the channel carries data.
    events : pandas.DataFrame
        The recording's labelled events (onset, duration, description, label).
    ch_names : list of str
    sfreq : float
    n_times : int
    """

    x: np.ndarray
    table: pd.DataFrame
    ch_mask: np.ndarray
    events: pd.DataFrame
    ch_names: list[str]
    sfreq: float
    n_times: int


def process_recording(
    recording: Any,
    config: DictConfig,
    label_map: dict[str, int],
    qc: artifacts.RecordingQC,
    target: Any = None,
) -> Shard:
    """One recording → kept windows, their table, channel mask and labelled events.

    Chains :func:`~neurodecode.data.preprocess.preprocess_recording`, windowing, window
    rejection, scaling and clipping, recording every decision in ``qc``.
    """
    unmatched = Counter(
        d for d in np.asarray(recording.annotations["description"], dtype=str) if d not in label_map
    )
    if unmatched and label_map:
        qc.notes.append(
            "events not in the label map, ignored: "
            + ", ".join(f"{name} ×{count}" for name, count in unmatched.items())
        )
    prepared = preprocess.preprocess_recording(recording, config, qc, target)
    rec, mask = prepared.recording, prepared.ch_mask
    win = config.windows
    if win.mode == "events":
        table, outside = windows.event_windows(
            rec.annotations,
            rec.sfreq,
            rec.n_times,
            label_map,
            win.tmin,
            win.tmax,
            source=rec.source,
        )
        if outside:
            qc.notes.append(f"{outside} event window(s) fall outside the recording; dropped")
            qc.windows_rejected["outside_recording"] = outside
        n_times = windows.n_window_samples(win.tmax - win.tmin, rec.sfreq)
    else:
        table = windows.sliding_windows(
            rec.annotations,
            rec.sfreq,
            rec.n_times,
            win.length_s,
            win.stride_s,
            label_map,
            win.overlap_threshold,
            win.background,
            source=rec.source,
        )
        n_times = windows.n_window_samples(win.length_s, rec.sfreq)
    starts = table["start_sample"].to_numpy(np.int64)
    qc.windows_total = len(table) + qc.windows_rejected.get("outside_recording", 0)
    art = config.artifacts
    if art.enabled:
        reasons = artifacts.reject_windows(
            rec.signal,
            starts,
            n_times,
            rec.sfreq,
            mask,
            art.windows,
            prepared.plateau_cumsum,
            prepared.raw_sfreq,
            prepared.raw_good,
        )
        for reason, count in pd.Series(reasons[reasons != ""]).value_counts().items():
            qc.windows_rejected[str(reason)] = int(count)
        if art.windows.reject:
            keep = reasons == ""
            table, starts = table[keep], starts[keep]
        else:
            table = table.assign(rejected=reasons)
    qc.windows_kept = len(table)
    scaled = preprocess.scale_signal(
        rec.signal, mask, config.scaling.method, config.scaling.per, config.scaling.scale_uv
    )
    if config.clip is not None:
        np.clip(scaled, -config.clip, config.clip, out=scaled)
    x = windows.extract_windows(scaled, starts, n_times).astype(config.dtype, copy=False)
    table = table.drop(columns="start_sample").reset_index(drop=True)
    events = windows.labelled_events(rec.annotations, label_map)
    return Shard(
        x=x,
        table=table,
        ch_mask=mask,
        events=events,
        ch_names=list(rec.ch_names),
        sfreq=float(rec.sfreq),
        n_times=n_times,
    )


def _finalise(
    directory: Path,
    results: dict[str, dict[str, Any]],
    jobs: list[_Job],
    config: DictConfig,
    *,
    key: str,
    dataset: str,
    classes: list[str],
) -> WindowCache:
    """Write index, events, QC report and (last) meta.json from the shard summaries."""
    records, frames, event_frames, recordings = [], [], [], {}
    for job in jobs:
        result = results[job.recording]
        qc = artifacts.RecordingQC(**result["qc"])
        records.append(qc)
        if qc.status != "ok":
            continue
        table = pd.DataFrame(result["windows"])
        ids = {
            "subject": job.subject or "",
            "session": job.session or "",
            "run": job.run or "",
            "recording": job.recording,
        }
        table = table.assign(**ids, row=np.arange(len(table)))
        frames.append(table)
        event_frames.append(pd.DataFrame(result["events"]).assign(recording=job.recording))
        recordings[job.recording] = {
            "source": result["source"],
            "ch_mask": result["ch_mask"],
            "duration_s": result["duration_s"],
            "n_windows": result["n_windows"],
            **ids,
        }
    report = artifacts.build_report(
        records,
        dataset=dataset,
        cache_key=key,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        config=preprocess.config_dict(config),
    )
    try:
        artifacts.write_report(directory / "qc.json", report)
    except OSError as err:
        raise CacheError(
            f"cannot write the QC report ({err.strerror or err})", path=directory
        ) from err
    n_windows = sum(len(f) for f in frames)
    if n_windows == 0:
        logger.error("%s", artifacts.format_summary(report))
        raise CacheError(
            "no recording produced a window; nothing was cached",
            path=directory / "qc.json",
            hint="the QC report lists why each recording failed or lost its windows",
        )
    columns = ["subject", "session", "run", "recording", *windows.WINDOW_COLUMNS, "row"]
    index = pd.concat(frames, ignore_index=True)
    extra = [c for c in index.columns if c not in columns]
    events = pd.concat(event_frames, ignore_index=True) if event_frames else pd.DataFrame()
    names, positions, sfreq, n_times = _signal_layout(directory, results)
    meta = {
        "format": CACHE_FORMAT,
        "key": key,
        "dataset": dataset,
        "created": report["created"],
        "code": code_version(),
        "config": preprocess.config_dict(config),
        "ch_names": names,
        "ch_pos": positions,
        "sfreq": sfreq,
        "n_times": n_times,
        "dtype": config.dtype,
        "units": _units(config),
        "classes": classes,
        "n_windows": n_windows,
        "recordings": recordings,
    }
    try:
        write_atomic(directory / "index.csv", index[columns + extra].to_csv(index=False))
        write_atomic(directory / "events.csv", events.to_csv(index=False))
        write_atomic(directory / "meta.json", jsonio.dumps(meta, indent=1, default=_json_default))
    except OSError as err:
        raise CacheError(
            f"cannot finish the cache ({err.strerror or err}); a rerun resumes", path=directory
        ) from err
    return WindowCache(directory)


def _signal_layout(directory: Path, results: dict) -> tuple[list[str], list, float, int]:
    """Channel names, positions, rate and window length, which every shard must share."""
    from neurodecode.data import montage

    layouts = [r["layout"] for r in results.values() if r["qc"]["status"] == "ok"]
    for layout in layouts[1:]:
        if layout != layouts[0]:
            raise CacheError(
                f"shards disagree on channels, rate or window length: {layouts[0]} vs {layout}",
                path=directory,
                hint="set channels.target and resample in the config",
            )
    names = layouts[0]["ch_names"]
    positions = montage.channel_positions(names).tolist()
    return names, positions, layouts[0]["sfreq"], layouts[0]["n_times"]


def _units(config: DictConfig) -> str:
    if config.scaling.method == "fixed":
        units = f"µV / {config.scaling.scale_uv:g}"
    else:
        units = f"robust z-score (per {config.scaling.per})"
    if config.clip is not None:
        units += f", clipped at ±{config.clip:g}"
    return units


def _make_dirs(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheError(
            f"cannot create the cache folder ({err.strerror or err})", path=path
        ) from err


def _file_stamp(path: Any) -> list[int] | None:
    """``[size, mtime_ns]`` of a file (None when absent): an edited file gets a new cache."""
    if path is None:
        return None
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _recording_ids(paths: list[Path]) -> list[str]:
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


def _first_channels(entries: list[Any], config: DictConfig) -> list[str] | None:
    """Canonical names of the first readable recording's channels (the dataset's target).

    None when its names are not standard electrode names (Bonn's single ``EEG``): the
    recordings are then used as they are and must all have the same channels.
    """
    from neurodecode.data import montage
    from neurodecode.data.io import read_recording

    errors = []
    for entry in entries[:5]:
        try:
            recording = read_recording(entry.path, annotation_format="file")
        except NeurodecodeError as err:
            errors.append(str(err))
            continue
        types = set(config.channels.types)
        names = [
            n for n, t in zip(recording.ch_names, recording.ch_types, strict=True) if t in types
        ]
        known = [c for c in map(montage.try_canonical_name, names) if c is not None]
        if not known:
            logger.info("%s: channel names %s are not standard; not harmonised", entry.path, names)
            return None
        return list(dict.fromkeys(known))
    raise CacheError(
        "none of the first recordings could be read to infer the channel set: " + "; ".join(errors),
        hint="set channels.target in the preprocessing config",
    )


def _label_plan(config: DictConfig, manifest: Any) -> tuple[dict[str, int], list[str]]:
    """The ``{event description: int}`` map and the class names the integers index.

    From ``windows.label_map`` when set; otherwise from the manifest's ``label_map``
    (description → class name; several descriptions may share a class, e.g. real and
    imagined left fist), classes sorted by name with ``windows.background`` first.
    """
    explicit = config.windows.label_map
    background = config.windows.background
    if explicit is not None:
        plain = OmegaConf.to_container(explicit) if OmegaConf.is_config(explicit) else explicit
        label_map = windows.normalise_label_map(plain)
        classes = [""] * (max(label_map.values(), default=-1) + 1)
        for name, value in label_map.items():
            if value >= 0 and not classes[value]:
                classes[value] = name
        return label_map, classes
    names = dict(manifest.label_map) if manifest is not None else {}
    if background:
        names.setdefault(background, background)
    classes = sorted(set(names.values()) - {background})
    classes = ([background] if background else []) + classes
    index = {name: i for i, name in enumerate(classes)}
    return {description: index[name] for description, name in names.items()}, classes


def _recording_label(entry: Any, label_map: dict[str, int]) -> str | None:
    """A whole-recording label from the entry's metadata (Bonn: the set letter), if any."""
    metadata = getattr(entry, "metadata", None) or {}
    for value in metadata.values():
        if isinstance(value, str) and value in label_map:
            return value
    return None


# --------------------------------------------------------------------------- entry points


def prepare_dataset(
    name: str, overrides: list[str] | dict | DictConfig | None = None, *, progress: bool = True
) -> WindowCache:
    """Fetch, read, preprocess, window and cache a dataset (or reuse its cache).

    Parameters
    ----------
    name : str
        A dataset manifest name (``eegmmidb``, ``bonn``, ...) or path.
    overrides : list of ``key=value``, mapping or DictConfig, optional
        Build options ``preprocess`` (config name; default ``configs/preprocess/<name>.yaml``
        if it exists, else ``default``), ``subjects``, ``sessions``, ``runs``, ``num_workers``,
        ``cache_dir``, ``rebuild``; any other key overrides the preprocessing config, e.g.
        ``bandpass.h_freq=30``.

    Returns
    -------
    WindowCache
    """
    from neurodecode.data.fetch import fetch_dataset
    from neurodecode.data.manifest import load_manifest

    options, changes = _split_overrides(overrides)
    manifest = load_manifest(name)
    config_name = options.get("preprocess") or (
        manifest.name
        if (preprocess.preprocess_config_dir() / f"{manifest.name}.yaml").is_file()
        else "default"
    )
    config = preprocess.load_preprocess_config(config_name, changes)
    entries = fetch_dataset(
        manifest,
        subjects=options.get("subjects"),
        sessions=options.get("sessions"),
        runs=options.get("runs"),
    )
    root = Path(options["cache_dir"]) if options.get("cache_dir") else cache_root() / manifest.name
    return build_cache(
        entries,
        config,
        root,
        dataset=manifest.name,
        manifest=manifest,
        num_workers=int(options.get("num_workers", min(4, os.cpu_count() or 1))),
        rebuild=bool(options.get("rebuild", False)),
        progress=progress,
    )


def _split_overrides(
    overrides: list[str] | dict | DictConfig | None,
) -> tuple[dict[str, Any], list[str] | dict]:
    if overrides is None:
        return {}, []
    if isinstance(overrides, list | tuple):
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form key=value")
        parsed = OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)))
    else:
        parsed = (
            OmegaConf.to_container(OmegaConf.create(overrides))
            if isinstance(overrides, DictConfig)
            else dict(overrides)
        )
    options = {k: parsed.pop(k) for k in list(parsed) if k in _BUILD_OPTIONS}
    return options, parsed


def prepare_command(args: Any) -> int:
    """``python -m neurodecode.data prepare <dataset> [overrides]``."""
    cache = prepare_dataset(args.target, list(args.overrides))
    print(artifacts.format_summary(cache.qc))
    print(
        f"{len(cache)} windows of {len(cache.ch_names)} channels × {cache.n_times} samples "
        f"at {cache.sfreq:g} Hz in {cache.path}"
    )
    print(f"QC report: {cache.path / 'qc.json'}")
    return 0
