"""Prepare a dataset: fetch its files, then build (or reuse) its window cache.

``neurodecode data prepare <dataset> [key=value ...]`` (:mod:`neurodecode.cli.data`) runs
:func:`prepare_dataset` and prints its summary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neurodecode.data import preprocess
from neurodecode.data.build import build_cache
from neurodecode.data.cache import WindowCache, cache_root
from neurodecode.data.fetch import fetch_dataset, folder_lock
from neurodecode.data.manifest import load_manifest
from neurodecode.errors import ConfigError, DownloadError

BUILD_OPTIONS = (
    "preprocess",
    "subjects",
    "sessions",
    "runs",
    "num_workers",
    "cache_dir",
    "rebuild",
)


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
        Its QC report (``cache.qc``) counts the recordings that failed, those whose files
        could not be downloaded included; the build goes on without them.

    Notes
    -----
    Processes preparing the same dataset at once take turns: the dataset's files and its
    cache folder are each held under a lock file while they are written, and the second
    process reuses what the first one wrote.
    """
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
        keep_going=True,
    )
    failed = [entry for entry in entries if entry.error]
    if entries and len(failed) == len(entries):  # nothing to build: say why, not "no window"
        raise DownloadError(
            f"none of the {len(entries)} file(s) of {manifest.name} could be downloaded; "
            f"the first: {failed[0].error}",
            path=manifest.manifest_path,
        )
    root = Path(options["cache_dir"]) if options.get("cache_dir") else cache_root() / manifest.name
    with folder_lock(root.parent, f"the {manifest.name} window cache", f".{root.name}"):
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
    options = {k: parsed.pop(k) for k in list(parsed) if k in BUILD_OPTIONS}
    return options, parsed
