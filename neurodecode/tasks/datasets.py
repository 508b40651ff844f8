"""The window cache a supervised task trains on: ``cfg.data`` preprocessed as
``cfg.preprocess``, its signal contract and its record for ``results.json``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from neurodecode.data.manifest import manifest_file
from neurodecode.data.prepare import prepare_dataset
from neurodecode.tasks.base import RunData


def dataset_source(cfg: DictConfig, run_dir: Path) -> str:
    """The manifest name of ``cfg.data``, or a changed copy of it (``data.manifest``)."""
    if cfg.data.manifest:
        return str(_changed_manifest(cfg.data.name, cfg.data.manifest, run_dir))
    return str(cfg.data.name)


def prepare_data(cfg: DictConfig, run_dir: Path, changes: Mapping[str, Any] | None = None) -> Any:
    """Build (or reuse) the window cache of ``cfg.data`` preprocessed as ``cfg.preprocess``.

    ``data.prepare`` and then ``changes`` are merged over the preprocessing config.
    """
    overrides = OmegaConf.to_container(cfg.preprocess, resolve=True)
    overrides = deep_merge(overrides, OmegaConf.to_container(cfg.data.prepare, resolve=True))
    overrides = deep_merge(overrides, changes or {})
    return prepare_dataset(dataset_source(cfg, run_dir), overrides)


def _changed_manifest(name: str, changes: DictConfig, run_dir: Path) -> Path:
    """Write the manifest ``name`` with ``changes`` merged in to the run folder."""
    manifest = yaml.safe_load(manifest_file(name).read_text())
    merged = deep_merge(manifest, OmegaConf.to_container(changes, resolve=True))
    path = run_dir / "manifest.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(merged, sort_keys=False))
    return path


def deep_merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, nested mappings key by key."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def cache_run_data(cfg: DictConfig, cache: Any, datamodule: Any, **arguments: Any) -> RunData:
    """The :class:`RunData` of a window cache: its signal contract (plus ``arguments``),
    its record for ``results.json`` and its QC report."""
    qc_report = Path(cache.path) / "qc.json"
    return RunData(
        datamodule=datamodule,
        arguments={
            "n_chans": len(cache.ch_names),
            "n_times": int(cache.n_times),
            "sfreq": float(cache.sfreq),
            "ch_names": list(cache.ch_names),
            "ch_pos": np.asarray(cache.ch_pos, dtype=float).tolist(),
            **arguments,
        },
        record={
            "dataset": cfg.data.name,
            "cache_key": cache.key,
            "cache_path": str(cache.path),
            "n_windows": len(cache),
            "classes": list(cache.classes),
            "units": cache.units,
            "channels": list(cache.ch_names),
            "sfreq": cache.sfreq,
            "n_times": cache.n_times,
            # the preprocessing the cache was really built with (cfg.preprocess with the
            # dataset's data.prepare merged in): what an export must replay
            "preprocess": cache.meta["config"],
        },
        data_hash=cache.key,
        provenance={
            "preprocessing": cache.meta["config"],
            "dataset": str(cfg.data.name),
            "datasets": [str(cfg.data.name)],
        },
        source=cache,
        qc_report=qc_report if qc_report.is_file() else None,
    )
