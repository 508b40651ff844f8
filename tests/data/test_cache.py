"""The window cache: build, reuse, rebuild on change, resume after a kill, disk full, CLI."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from neurodecode.data import build as build_module
from neurodecode.data import cache as cache_module
from neurodecode.data.__main__ import main
from neurodecode.data.build import build_cache
from neurodecode.data.cache import WindowCache
from neurodecode.data.fetch import RecordingEntry
from neurodecode.data.prepare import prepare_dataset
from neurodecode.data.preprocess import load_preprocess_config
from neurodecode.errors import CacheError
from tests.conftest import REPO_ROOT, require_shared

RUNS = (4, 8, 12)
LABELS = ["windows.label_map={rest: 0, imagined_left_fist: 1, imagined_right_fist: 2}"]


@pytest.fixture(scope="module")
def eegmmidb_copies(tmp_path_factory) -> list[RecordingEntry]:
    """Copies of the real eegmmidb S001 imagery runs, plus the real truncated run 2."""
    folder = tmp_path_factory.mktemp("eegmmidb") / "S001"
    folder.mkdir()
    entries = []
    for run in RUNS:
        path = folder / f"S001R{run:02d}.edf"
        shutil.copy(require_shared(f"mirror/eegmmidb/S001/S001R{run:02d}.edf"), path)
        entries.append(RecordingEntry(path=path, subject="001", run=f"{run:02d}"))
    return entries


@pytest.fixture(scope="module")
def config():
    return load_preprocess_config("eegmmidb", LABELS)


@pytest.fixture(scope="module")
def built(eegmmidb_copies, config, tmp_path_factory) -> WindowCache:
    root = tmp_path_factory.mktemp("cache")
    return build_cache(
        eegmmidb_copies, config, root, dataset="eegmmidb", num_workers=0, progress=False
    )


def test_cache_content_and_batches(built):
    summary = built.qc["summary"]
    assert summary["windows_total"] == 90  # 30 cues in each of the 3 runs
    assert len(built) == summary["windows_kept"] >= 85
    assert built.sfreq == 128.0 and built.n_times == 512 and len(built.ch_names) == 64
    assert built.ch_names[:3] == ["FC5", "FC3", "FC1"]  # canonical 10-05 names
    assert built.classes == ["rest", "imagined_left_fist", "imagined_right_fist"]
    index = built.index
    assert {"subject", "session", "run", "recording", "start_s", "label"} <= set(index.columns)
    assert set(index["recording"]) == {"S001R04", "S001R08", "S001R12"}
    assert (index["subject"] == "001").all() and set(index["run"]) == {"04", "08", "12"}
    assert np.bincount(built.labels).tolist()[1:] == [
        (index["description"] == name).sum() for name in built.classes[1:]
    ]
    item = built[5]
    assert set(item) == {
        "x",
        "y",
        "ch_pos",
        "ch_mask",
        "subject",
        "session",
        "recording",
        "start_s",
    }
    assert item["x"].shape == (64, 512) and item["x"].dtype == torch.float32
    assert item["ch_pos"].shape == (64, 3) and torch.isfinite(item["ch_pos"]).all()
    assert item["ch_mask"].dtype == torch.bool and item["ch_mask"].all()
    assert item["start_s"] == index["start_s"][5] and item["y"] == index["label"][5]
    assert float(item["x"].abs().max()) <= 20.0  # clipped robust z-scores
    batch = next(iter(torch.utils.data.DataLoader(built, batch_size=8, num_workers=0)))
    assert batch["x"].shape == (8, 64, 512) and batch["y"].dtype == torch.int64
    # The memory maps are not pickled with the dataset (DataLoader workers reopen them).
    import pickle

    assert pickle.loads(pickle.dumps(built))[5]["x"].equal(item["x"])
    qc = json.loads((built.path / "qc.json").read_text())
    assert qc["summary"]["succeeded"] == 3 and qc["summary"]["failed"] == 0


def test_unchanged_config_reuses_and_changed_config_rebuilds(
    built, eegmmidb_copies, config, monkeypatch
):
    def refuse(job):
        raise AssertionError("a cached recording was processed again")

    monkeypatch.setattr(build_module, "_build_shard", refuse)
    again = build_cache(
        eegmmidb_copies,
        config,
        built.path.parent,
        dataset="eegmmidb",
        num_workers=0,
        progress=False,
    )
    assert again.path == built.path and again.key == built.key
    changed = load_preprocess_config("eegmmidb", [*LABELS, "bandpass.h_freq=30"])
    with pytest.raises(AssertionError, match="processed again"):
        build_cache(
            eegmmidb_copies,
            changed,
            built.path.parent,
            dataset="eegmmidb",
            num_workers=0,
            progress=False,
        )


def test_edited_annotation_file_gives_a_new_cache_key(eegmmidb_copies, config, tmp_path):
    # Only the key is needed: _build_shard never runs because the key differs up front.
    events = tmp_path / "events.tsv"
    events.write_text("onset\tduration\ttrial_type\n1.0\t4.0\trest\n")
    entries = [dataclasses.replace(e, annotation_path=events) for e in eegmmidb_copies]
    keys = []
    for text in ("first", "edited"):
        events.write_text(f"onset\tduration\ttrial_type\n1.0\t4.0\t{text}\n")
        os.utime(events, ns=(0, len(keys) * 10**9))
        keys.append(cache_module.cache_key(config, cache_module.selection_of(entries), None))
    assert keys[0] != keys[1]


def test_corrupt_meta_json_is_a_cache_error(built, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(built.path, copy)
    (copy / "meta.json").write_text('{"format": ')
    with pytest.raises(CacheError, match="meta.json cannot be read"):
        WindowCache(copy)


def test_interrupted_build_resumes(eegmmidb_copies, config, tmp_path, monkeypatch):
    real = build_module._build_shard
    calls = []

    def killed_after_two(job):
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a Ctrl-C or a dying worker does mid-build
        calls.append(job.recording)
        return real(job)

    monkeypatch.setattr(build_module, "_build_shard", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        build_cache(
            eegmmidb_copies, config, tmp_path, dataset="eegmmidb", num_workers=0, progress=False
        )
    (directory,) = tmp_path.iterdir()
    assert not (directory / "meta.json").exists()  # unfinished: never read as a cache
    done = sorted(p.name for p in (directory / "shards").glob("*.json"))
    assert done == ["S001R04.json", "S001R08.json"]
    stamps = {p: p.stat().st_mtime_ns for p in (directory / "shards").iterdir()}

    calls.clear()
    monkeypatch.setattr(build_module, "_build_shard", lambda job: calls.append(job) or real(job))
    finished = build_cache(
        eegmmidb_copies, config, tmp_path, dataset="eegmmidb", num_workers=0, progress=False
    )
    assert [job.recording for job in calls] == ["S001R12"]  # only the missing one
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # done shards kept
    assert set(finished.index["recording"]) == {"S001R04", "S001R08", "S001R12"}


def test_disk_full_leaves_a_consistent_cache(eegmmidb_copies, config, tmp_path, monkeypatch):
    real = build_module._write_shard

    def full_after_one(shard_dir, recording, x, summary):
        if any(shard_dir.glob("*.json")):
            (shard_dir / f".{recording}.npy.tmp").write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(shard_dir, recording, x, summary)

    monkeypatch.setattr(build_module, "_write_shard", full_after_one)
    with pytest.raises(CacheError, match="the disk is full while writing S001R08.*rerun resumes"):
        build_cache(
            eegmmidb_copies, config, tmp_path, dataset="eegmmidb", num_workers=0, progress=False
        )
    monkeypatch.undo()
    (directory,) = tmp_path.iterdir()
    assert not (directory / "meta.json").exists()
    assert sorted(p.name for p in (directory / "shards").iterdir() if "tmp" not in p.name) == [
        "S001R04.json",
        "S001R04.npy",
    ]
    finished = build_cache(
        eegmmidb_copies, config, tmp_path, dataset="eegmmidb", num_workers=0, progress=False
    )
    assert len(finished.index["recording"].unique()) == 3


def test_failing_recordings_are_reported_and_skipped(eegmmidb_copies, tmp_path):
    broken = tmp_path / "S001" / "S001R02.edf"  # the real truncated download
    broken.parent.mkdir()
    shutil.copy(require_shared("faults/S001R02_truncated.edf"), broken)
    short = load_preprocess_config("eegmmidb", [*LABELS, "windows.tmax=200"])
    entries = [RecordingEntry(path=broken, subject="001", run="02"), eegmmidb_copies[0]]
    with pytest.raises(CacheError, match="no recording produced a window"):
        build_cache(
            entries, short, tmp_path / "c1", dataset="eegmmidb", num_workers=0, progress=False
        )
    (directory,) = (tmp_path / "c1").iterdir()
    report = json.loads((directory / "qc.json").read_text())
    failed = {r["recording"].split("__")[-1]: r["error"]["message"] for r in report["recordings"]}
    assert "S001R02_truncated" not in failed["S001R02"]  # the message names the file it read
    assert "S001R02.edf" in failed["S001R02"] and "RecordingError" in {
        r["error"]["type"] for r in report["recordings"]
    }
    assert "shorter than one window of 200.00 s" in failed["S001R04"]
    config = load_preprocess_config("eegmmidb", LABELS)
    cache = build_cache(
        entries, config, tmp_path / "c2", dataset="eegmmidb", num_workers=0, progress=False
    )
    assert {r.split("__")[-1] for r in cache.index["recording"]} == {"S001R04"}
    assert cache.qc["summary"]["failed"] == 1


@pytest.mark.slow
def test_parallel_build_matches_serial(built, eegmmidb_copies, config, tmp_path):
    parallel = build_cache(
        eegmmidb_copies, config, tmp_path, dataset="eegmmidb", num_workers=2, progress=False
    )
    assert parallel.key == built.key
    assert parallel.index.equals(built.index)
    assert torch.equal(parallel[40]["x"], built[40]["x"])


@pytest.mark.network
def test_prepare_eegmmidb_through_the_mirror(neurodecode_home, mirror_url, monkeypatch, capsys):
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    args = ["prepare", "eegmmidb", "subjects=[1]", "runs=[4,6]", "num_workers=0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "QC: 2/2 recordings processed" in out and "qc.json" in out
    (directory,) = (neurodecode_home / "window-cache" / "eegmmidb").iterdir()
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["n_times"] == 512 and meta["config"]["windows"]["mode"] == "events"
    classes = ["both_feet", "both_fists", "left_fist", "rest", "right_fist"]  # the manifest's
    assert meta["classes"] == classes
    index = WindowCache(directory).index
    pairs = set(zip(index["description"], index["label"], strict=True))
    assert ("imagined_left_fist", 2) in pairs and ("imagined_both_feet", 0) in pairs
    stamp = (directory / "meta.json").stat().st_mtime_ns
    assert main(args) == 0  # the second run reuses the cache
    assert (directory / "meta.json").stat().st_mtime_ns == stamp


@pytest.mark.network
def test_prepare_bonn_labels_segments_by_set(neurodecode_home, mirror_url, monkeypatch):
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    cache = prepare_dataset(
        "bonn", ["subjects=[Z001,O001,N001,F001,S001]", "num_workers=0"], progress=False
    )
    assert cache.ch_names == ["EEG"] and cache.sfreq == 128.0
    by_recording = cache.index.groupby("recording")["description"].agg(set)
    assert {r.split("__")[0]: d for r, d in by_recording.items()} == {
        "Z": {"Z"},
        "O": {"O"},
        "N": {"N"},
        "F": {"F"},
        "S": {"S"},
    }
    assert len(cache.index) == 5 * 10  # 23.6 s → 10 windows of 4 s every 2 s
    assert len(set(cache.labels)) == 5


@pytest.mark.slow
@pytest.mark.network
def test_killed_prepare_process_completes_on_rerun(neurodecode_home, mirror_url, tmp_path):
    """SIGKILL a real `python -m neurodecode.data prepare` after its first shard, rerun it."""
    env = {
        **os.environ,
        "NEURODECODE_HOME": str(neurodecode_home),
        "NEURODECODE_MIRROR": mirror_url,
    }
    args = [
        sys.executable,
        "-m",
        "neurodecode.data",
        "prepare",
        "eegmmidb",
        "subjects=[1]",
        "runs=[3,4,5,6]",
        "num_workers=0",
    ]
    process = subprocess.Popen(
        args, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    root = neurodecode_home / "window-cache" / "eegmmidb"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(root.glob("*/shards/*.json")):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = list(root.glob("*/shards/*.json"))
    assert done and not list(root.glob("*/meta.json")), "killed too late to test a resume"
    rerun = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming" in rerun.stderr
    (directory,) = root.iterdir()
    meta = json.loads((directory / "meta.json").read_text())
    assert len(meta["recordings"]) == 4
