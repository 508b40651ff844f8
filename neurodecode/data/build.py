"""Build a window cache: one recording per job, in parallel, resumable.

:func:`build_cache` turns recordings into the on-disk store of :mod:`neurodecode.data.cache`:
each job reads one recording and runs :func:`neurodecode.data.transform.transform_recording`
on it (the transform prediction also uses), then writes its shard; the index, events, QC
report and ``meta.json`` are written last from the shard summaries. A recording that fails
is recorded in the QC report and the build goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import dataclasses
import datetime as dt
import errno
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from neurodecode import jsonio
from neurodecode.data import artifacts, montage, preprocess, windows
from neurodecode.data.cache import (
    CACHE_FORMAT,
    SHARDS,
    WindowCache,
    cache_key,
    code_version,
    recording_ids,
    selection_of,
)
from neurodecode.data.io import read_channels, read_recording
from neurodecode.data.transform import transform_recording
from neurodecode.errors import CacheError, DownloadError, NeurodecodeError
from neurodecode.files import temporary_sibling, write_atomic

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h): a signal for when the parent dies


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
    download_error: str | None = None


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
        ``annotation_path`` (e.g. :class:`neurodecode.data.fetch.RecordingEntry`); one
        whose ``error`` is set could not be downloaded and is recorded as failed.
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
    entries = list(entries)
    ids = recording_ids([Path(e.path) for e in entries])
    label_map, classes = _label_plan(config, manifest)
    content = manifest.model_dump(mode="json") if manifest is not None else None
    key = cache_key(config, selection_of(entries, ids), content)
    directory = Path(root) / key[:16]
    if (directory / "meta.json").is_file() and not rebuild:
        logger.info("reusing the cache %s (same manifest, files, config and code)", directory)
        return WindowCache(directory)
    _start_folder(directory, rebuild)
    if annotation_format is None and manifest is not None:
        annotation_format = manifest.annotation_format
    target = config.channels.target
    if target is None:
        usable = [e for e in entries if not getattr(e, "error", None)]
        target = _dataset_channels(usable, config, manifest) if usable else None
    common = dict(annotation_format=annotation_format, label_map=label_map, target=target,
                  config=preprocess.config_dict(config), shard_dir=directory / SHARDS)  # fmt: skip
    jobs = [_job(r, e, **common) for r, e in zip(ids, entries, strict=True)]
    results = _run_jobs(jobs, num_workers, progress, dataset)
    return _finalise(directory, results, jobs, config, key=key, dataset=dataset, classes=classes)


def _job(recording: str, entry: Any, *, label_map: dict[str, int], **common: Any) -> _Job:
    """The job of one recording; a recording whose download failed carries the reason."""
    return _Job(
        recording=recording,
        path=Path(entry.path),
        subject=entry.subject,
        session=entry.session,
        run=entry.run,
        annotation_path=getattr(entry, "annotation_path", None),
        recording_label=_recording_label(entry, label_map),
        label_map=label_map,
        download_error=getattr(entry, "error", None),
        **common,
    )


def _start_folder(directory: Path, rebuild: bool) -> None:
    """Create the shard folder; on ``rebuild``, forget every finished shard and the meta."""
    if rebuild and (directory / "meta.json").is_file():
        (directory / "meta.json").unlink()
        for done in (directory / SHARDS).glob("*.json"):
            done.unlink()
    _make_dirs(directory / SHARDS)


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
            with cf.ProcessPoolExecutor(
                max_workers=num_workers, initializer=_end_with_parent, initargs=(os.getpid(),)
            ) as pool:
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


def _end_with_parent(parent: int) -> None:
    """Pool initializer: the worker ends as soon as ``parent`` (the build) dies.

    A killed build otherwise leaves its workers finishing their recordings, or waiting on
    a queue nobody reads. Linux delivers SIGKILL on the parent's death (``prctl``);
    elsewhere a thread checks the parent every half second.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


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
    config = _config(json.dumps(job.config, sort_keys=True))
    qc = artifacts.RecordingQC(
        recording=job.recording,
        source=str(job.path),
        subject=job.subject,
        session=job.session,
        run=job.run,
    )
    if job.download_error:
        qc.fail(DownloadError(job.download_error))
        return {"qc": qc.to_dict(), "n_windows": 0}
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
        shard = transform_recording(recording, config, job.label_map, qc, job.target)
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
    records, frames, event_frames, recordings = _collect(results, jobs)
    n_windows = sum(len(f) for f in frames)
    report = _write_report(
        directory, records, config, n_windows, key=key, dataset=dataset, classes=classes
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


def _collect(
    results: dict[str, dict[str, Any]], jobs: list[_Job]
) -> tuple[list[artifacts.RecordingQC], list[pd.DataFrame], list[pd.DataFrame], dict]:
    """QC records of every job; window tables, events and summaries of the good ones."""
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
    return records, frames, event_frames, recordings


def _write_report(
    directory: Path,
    records: list[artifacts.RecordingQC],
    config: DictConfig,
    n_windows: int,
    *,
    key: str,
    dataset: str,
    classes: list[str],
) -> dict[str, Any]:
    """Write ``qc.json`` and log its warnings (a class losing more than
    ``artifacts.windows.warn_class_loss`` of its windows to rejection); refuse a build in
    which no recording produced a window."""
    report = artifacts.build_report(
        records,
        classes=classes,
        warn_class_loss=config.artifacts.windows.get("warn_class_loss"),
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
    for warning in report["summary"]["warnings"]:
        logger.warning("%s: %s (%s)", dataset, warning, directory / "qc.json")
    if n_windows == 0:
        logger.error("%s", artifacts.format_summary(report))
        raise CacheError(
            "no recording produced a window; nothing was cached",
            path=directory / "qc.json",
            hint="the QC report lists why each recording failed or lost its windows",
        )
    return report


def _signal_layout(directory: Path, results: dict) -> tuple[list[str], list, float, int]:
    """Channel names, positions, rate and window length, which every shard must share."""
    good = [r for r in results.values() if r["qc"]["status"] == "ok"]
    layouts = [r["layout"] for r in good]
    for result in good[1:]:
        if result["layout"] != layouts[0]:
            raise CacheError(
                f"{result['source']} and {good[0]['source']} disagree on channels, rate or "
                f"window length: {result['layout']} vs {layouts[0]}",
                path=directory,
                hint="set channels.target and resample in the config",
            )
    names = layouts[0]["ch_names"]
    positions = montage.channel_positions(names).tolist()
    return names, positions, layouts[0]["sfreq"], layouts[0]["n_times"]


def _units(config: DictConfig) -> str:
    if config.scaling.method == "train_split":
        return "µV (scaled with training-split statistics when read for a run)"
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


def _dataset_channels(entries: list[Any], config: DictConfig, manifest: Any) -> list[str] | None:
    """The dataset's channel set where ``channels.target`` names none.

    The manifest's ``channels`` when it lists them; otherwise the canonical names of the
    channels of ``channels.types`` that every recording has, in the first one's order, read
    from the headers. Recordings that cannot be read or hold no such channel are left to
    fail alone. None when no recording's channels have electrode names (Bonn's ``EEG``):
    they are used as they are and must all be the same.

    Raises
    ------
    CacheError
        A recording shares no channel with those before it, or differs from them where
        names are not electrode names; the message names both files.
    """
    if manifest is not None and getattr(manifest, "channels", None):
        return list(manifest.channels)
    types = set(config.channels.types)
    common: list[str] | None = None  # canonical names shared so far
    first: tuple[Path, list[str]] | None = None
    for entry in entries:
        names, known = _header_channels(Path(entry.path), types)
        if not names or (common is not None and not known):
            continue  # no channel of these types, or none with an electrode name: fails alone
        if first is None:
            first, common = (Path(entry.path), known or names), known or None
            continue
        kept = [c for c in common if c in known] if common is not None else None
        if kept == [] or (common is None and names != first[1]):
            raise CacheError(
                f"{entry.path} has the channels {', '.join(names)}, which "
                f"{'share none with' if kept == [] else 'differ from'} those of {first[0]} "
                f"({', '.join(first[1])})",
                hint="set channels.target in the preprocessing config, or leave one out",
            )
        common = kept
    if common is not None and first is not None and len(common) < len(first[1]):
        logger.info("channels common to every recording (%d): %s", len(common), common)
    return common


def _header_channels(path: Path, types: set[str]) -> tuple[list[str], list[str]]:
    """A recording's channels of ``types`` and their canonical names (unknown ones left out);
    nothing for a file that cannot be read (its own job reports why)."""
    try:
        names, kinds = read_channels(path)
    except NeurodecodeError:
        return [], []
    names = [n for n, t in zip(names, kinds, strict=True) if t in types]
    return names, list(dict.fromkeys(c for c in map(montage.try_canonical_name, names) if c))


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
