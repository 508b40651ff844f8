"""Hours of EEG per second from EDF files to cached windows: neurodecode vs braindecode.

Both pipelines do the same operations on the same real recordings with the same number of
worker processes: read EDF, resample to 128 Hz, band-pass 0.5-40 Hz, notch 60 Hz, cut one
4-s window at each T0/T1/T2 cue, and write the windows to disk.

- neurodecode: ``neurodecode.data.cache.build_cache`` (artifact checks off, no
  re-reference, no scaling: the same operations), float32 shards.
- braindecode: ``preprocess`` with ``Preprocessor("resample" | "filter" | "notch_filter")``
  and ``save_dir`` (its documented way to keep memory bounded), then
  ``create_windows_from_events`` and ``BaseConcatDataset.save``.

The recordings are the real eegmmidb S001 task runs (R03-R14, 125 s each) from
``../shared/data/mirror``, repeated through symbolic links until ``--hours`` is reached.
Each measurement runs in a fresh subprocess, imports done before the clock starts. Peak
memory is the largest summed proportional set size (PSS) of that process and its children,
sampled every 0.5 s; CPU time is that tree's user + system time, the sampler's excluded.
neurodecode also runs on half the hours, to show that its peak memory does not grow with
the amount of data. Prints one JSON line per figure: name, value, unit, baseline, ratio,
machine (plus each run's raw figures on stderr).

    python benchmarks/preprocess.py --hours 10 --workers 2
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NEURODECODE_SHARED_DATA", REPO.parent / "shared" / "data"))
RUNS = range(3, 15)
RUN_SECONDS = 125.0
LABELS = {
    "rest": 0,
    "left_fist": 1,
    "right_fist": 2,
    "both_fists": 3,
    "both_feet": 4,
    "imagined_left_fist": 1,
    "imagined_right_fist": 2,
    "imagined_both_fists": 3,
    "imagined_both_feet": 4,
}
SFREQ, L_FREQ, H_FREQ, LINE = 128.0, 0.5, 40.0, 60.0
WINDOW_S = 4.0
IMPORTS = {  # every module each runner imports, so that no import falls inside the clock
    "neurodecode": (
        "neurodecode.data.cache",
        "neurodecode.data.fetch",
        "neurodecode.data.io",
        "neurodecode.data.preprocess",
        "mne",
    ),
    "braindecode": ("braindecode.datasets", "braindecode.preprocessing", "mne"),
}


def machine(workers: int) -> str:
    """CPU model, logical CPUs and workers used."""
    return f"{cpu_name()}, {os.cpu_count()} CPUs, {workers} workers"


def link_recordings(folder: Path, hours: float) -> list[Path]:
    """Symbolic links to the real eegmmidb runs, repeated until ``hours`` of EEG."""
    sources = [SHARED / "mirror" / "eegmmidb" / "S001" / f"S001R{run:02d}.edf" for run in RUNS]
    missing = [s for s in sources if not s.is_file()]
    if missing:
        sys.exit(f"real recordings not found: {missing[0]} (set NEURODECODE_SHARED_DATA)")
    n_sets = int(-(-hours * 3600 // (RUN_SECONDS * len(sources))))
    paths = []
    for k in range(n_sets):
        target = folder / f"set{k:03d}"
        target.mkdir(parents=True, exist_ok=True)
        for source in sources:
            link = target / source.name
            link.symlink_to(source)
            paths.append(link)
    return paths


class ProcessTreeMonitor:
    """Peak summed PSS and total CPU time of this process and its descendants.

    Sampled in a thread every ``interval`` seconds. PSS (proportional set size) counts pages
    shared between processes (forked workers, mapped libraries) once in total, so the sum is
    the memory the tree really holds. CPU time is each process's last sampled user + system
    time, summed, minus the monitor thread's own (reading PSS is not free); workers that
    live less than one interval are missed.
    """

    def __init__(self, interval: float = 0.5) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._cpu: dict[int, float] = {}
        self._cpu_start = sum(self._process.cpu_times()[:2])
        self._own_cpu = 0.0
        self.peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        """CPU time used by the tree since the monitor started."""
        return sum(self._cpu.values()) - self._cpu_start - self._own_cpu

    def _sample(self) -> None:
        import psutil

        total = 0
        for proc in [self._process, *self._process.children(recursive=True)]:
            try:
                with proc.oneshot():
                    total += proc.memory_full_info().pss
                    self._cpu[proc.pid] = sum(proc.cpu_times()[:2])
            except psutil.Error:
                pass
        self.peak = max(self.peak, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._own_cpu = time.thread_time()
            self._stop.wait(self._interval)

    def __enter__(self) -> ProcessTreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        own = self._own_cpu
        self._sample()  # final CPU times, in this thread: the monitor's total is already known
        self._own_cpu = own


def run_neurodecode(paths: list[Path], out: Path, workers: int) -> int:
    """Build a neurodecode window cache; return the number of windows."""
    from neurodecode.data.build import build_cache
    from neurodecode.data.fetch import RecordingEntry
    from neurodecode.data.preprocess import load_preprocess_config

    labels = "{" + ", ".join(f"{k}: {v}" for k, v in LABELS.items()) + "}"
    config = load_preprocess_config(
        "motor_imagery",
        [
            f"resample={SFREQ}",
            f"bandpass.l_freq={L_FREQ}",
            f"bandpass.h_freq={H_FREQ}",
            f"notch.line_freq={int(LINE)}",
            "notch.harmonics=false",
            "artifacts.enabled=false",
            "reference=null",
            "scaling.method=fixed",
            "scaling.scale_uv=1",
            "clip=null",
            "windows.tmin=0",
            f"windows.tmax={WINDOW_S}",
            f"windows.label_map={labels}",
        ],
    )
    entries = [RecordingEntry(path=p, subject=p.parent.name, run=p.stem[-2:]) for p in paths]
    cache = build_cache(
        entries, config, out, dataset="benchmark", num_workers=workers, progress=False
    )
    return len(cache)


def run_braindecode(paths: list[Path], out: Path, workers: int) -> int:
    """braindecode: preprocess (saved), windows from events, saved; return the window count."""
    import mne
    from braindecode.datasets import BaseConcatDataset, RawDataset
    from braindecode.preprocessing import Preprocessor, create_windows_from_events, preprocess

    mne.set_log_level("ERROR")
    datasets = BaseConcatDataset(
        [
            RawDataset(
                mne.io.read_raw_edf(p, preload=False, verbose="error"),
                description={"subject": p.parent.name, "run": p.stem[-2:]},
            )
            for p in paths
        ]
    )
    preprocess(
        datasets,
        [
            Preprocessor("resample", sfreq=SFREQ),
            Preprocessor("filter", l_freq=L_FREQ, h_freq=H_FREQ),
            Preprocessor("notch_filter", freqs=[LINE]),
        ],
        save_dir=str(out / "preprocessed"),
        overwrite=True,
        n_jobs=workers,
    )
    size = int(WINDOW_S * SFREQ)
    windows = create_windows_from_events(
        datasets,
        trial_start_offset_samples=0,
        trial_stop_offset_samples=0,
        window_size_samples=size,
        window_stride_samples=size,
        on_last_window="drop",
        mapping={"T0": 0, "T1": 1, "T2": 2},
        preload=False,
        n_jobs=workers,
    )
    (out / "windows").mkdir()
    windows.save(str(out / "windows"), overwrite=True)
    return len(windows)


def measure(tool: str, hours: float, workers: int) -> dict:
    """Run one tool on ``hours`` of EEG in this process; return its figures."""
    with tempfile.TemporaryDirectory(prefix="nd-bench-") as tmp:
        tmp_path = Path(tmp)
        paths = link_recordings(tmp_path / "edf", hours)
        runner = run_neurodecode if tool == "neurodecode" else run_braindecode
        for module in IMPORTS[tool]:  # import before timing: both pay it once per process
            importlib.import_module(module)
        (tmp_path / "out").mkdir()
        with ProcessTreeMonitor() as monitor:
            start = time.perf_counter()
            n_windows = runner(paths, tmp_path / "out", workers)
            seconds = time.perf_counter() - start
    eeg_hours = len(paths) * RUN_SECONDS / 3600
    return {
        "tool": tool,
        "hours": eeg_hours,
        "seconds": seconds,
        "windows": n_windows,
        "hours_per_second": eeg_hours / seconds,
        "peak_pss_mib": monitor.peak / 2**20,
        "cpu_seconds": monitor.cpu_seconds,
        "hours_per_cpu_second": eeg_hours / monitor.cpu_seconds,
    }


def in_subprocess(tool: str, hours: float, workers: int) -> dict:
    """``measure`` in a fresh interpreter, so that imports and memory are that tool's alone."""
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            tool,
            "--hours",
            str(hours),
            "--workers",
            str(workers),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"{tool} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0, help="hours of EEG (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for both")
    parser.add_argument("--child", choices=("neurodecode", "braindecode"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.hours, args.workers)))
        return
    where = machine(args.workers)
    half = in_subprocess("neurodecode", args.hours / 2, args.workers)
    ours = in_subprocess("neurodecode", args.hours, args.workers)
    theirs = in_subprocess("braindecode", args.hours, args.workers)
    for result in (half, ours, theirs):
        print(json.dumps(result), file=sys.stderr)
    braindecode = "braindecode preprocess(save_dir)+create_windows_from_events+save"
    figures = [
        (
            "preprocess_throughput",
            "hours_per_second",
            "hours of EEG / s",
            ours,
            theirs,
            braindecode,
        ),
        (
            "preprocess_throughput_per_cpu",
            "hours_per_cpu_second",
            "hours of EEG / CPU-s",
            ours,
            theirs,
            braindecode,
        ),
        ("preprocess_peak_memory", "peak_pss_mib", "MiB", ours, theirs, braindecode),
        (
            "preprocess_peak_memory_vs_half_hours",
            "peak_pss_mib",
            "MiB",
            ours,
            half,
            f"neurodecode on {half['hours']:.2f} h",
        ),
    ]
    for name, key, unit, value, baseline, label in figures:
        print(
            json.dumps(
                {
                    "name": name,
                    "value": round(value[key], 4),
                    "unit": unit,
                    "baseline": label,
                    "baseline_value": round(baseline[key], 4),
                    "ratio": round(value[key] / baseline[key], 2),
                    "machine": where,
                    "hours": round(value["hours"], 2),
                }
            )
        )


if __name__ == "__main__":
    main()
