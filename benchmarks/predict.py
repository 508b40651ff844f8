"""Real-time factor and peak memory of ``neurodecode.predict`` on long 19-channel EEG.

A long 19-channel 256 Hz EDF is built from real recordings: the SzCORE 19 electrodes of
PhysioNet eegmmidb subject 1 (``../shared/data/mirror/eegmmidb/S001``, 13 runs, 160 Hz),
resampled to 256 Hz and tiled, every other copy time-reversed so that tiles join without a
step, written record by record (flat memory) to a temporary folder. Prediction runs from
the file to the events TSV in a fresh process per duration (peak RSS of that process),
with the seizure recipe's architecture (``dual_branch_conformer``, size small, 18-pair
double banana, 4-s windows every 2 s at 128 Hz; weights untrained: speed does not depend
on them) and the seizure preprocessing (band-pass, notch, artifact checks, robust scaling).

Prints one JSON line per figure: name, value, unit, baseline, ratio, machine.

    python benchmarks/predict.py --hours 1 24 [--threads N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCE = SHARED / "mirror" / "eegmmidb" / "S001"
SFREQ = 256
PHYSICAL_UV = 3200.0  # ±physical range of the EDF (µV)
TARGET_REALTIME = 1000.0


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"


def source_signal() -> tuple[np.ndarray, list[str]]:
    """The SzCORE 19 channels of every eegmmidb S001 run, µV at 256 Hz, concatenated."""
    from scipy.signal import resample_poly

    from neurodecode.data.io import read_recording
    from neurodecode.data.montage import SZCORE_19, harmonise

    parts = []
    for path in sorted(SOURCE.glob("S001R*.edf")):
        recording, _ = harmonise(read_recording(path), list(SZCORE_19))
        parts.append(resample_poly(recording.signal * 1e6, 8, 5, axis=1).astype(np.float32))
    return np.concatenate(parts, axis=1), list(SZCORE_19)


def write_long_edf(path: Path, seconds: int, signal_uv: np.ndarray, names: list[str]) -> None:
    """An EDF of ``seconds`` 1-s records tiling ``signal_uv`` (forward, reversed, ...)."""
    n_chans = len(names)
    digital = 32767
    gain = digital / PHYSICAL_UV

    def field(values: list[str], width: int) -> bytes:
        return b"".join(v[:width].ljust(width).encode("ascii") for v in values)

    header = (
        field(["0"], 8)
        + field(["X X X X"], 80)
        + field(["Startdate 01-JAN-2020 X neurodecode benchmark (eegmmidb S001 tiled)"], 80)
        + field(["01.01.20", "00.00.00"], 8)
        + field([str(256 * (n_chans + 1))], 8)
        + field([""], 44)
        + field([str(seconds), "1"], 8)
        + field([str(n_chans)], 4)
        + field(names, 16)
        + field(["AgAgCl electrode"] * n_chans, 80)
        + field(["uV"] * n_chans, 8)
        + field([f"{-PHYSICAL_UV:g}"] * n_chans, 8)
        + field([f"{PHYSICAL_UV:g}"] * n_chans, 8)
        + field([str(-digital)] * n_chans, 8)
        + field([str(digital)] * n_chans, 8)
        + field([""] * n_chans, 80)
        + field([str(SFREQ)] * n_chans, 8)
        + field([""] * n_chans, 32)
    )
    tile = np.clip(np.round(signal_uv * gain), -digital, digital).astype("<i2")
    tile_s = tile.shape[1] // SFREQ
    tile = tile[:, : tile_s * SFREQ]
    with path.open("wb") as out:
        out.write(header)
        written = 0
        copy = 0
        while written < seconds:
            data = tile if copy % 2 == 0 else tile[:, ::-1]
            n = min(tile_s, seconds - written)
            records = data[:, : n * SFREQ].reshape(n_chans, n, SFREQ).transpose(1, 0, 2)
            out.write(np.ascontiguousarray(records).tobytes())
            written += n
            copy += 1


def export_benchmark_model(folder: Path) -> Path:
    """The seizure recipe's architecture with the seizure preprocessing, untrained."""
    import torch

    from neurodecode.data.montage import DOUBLE_BANANA, channel_positions
    from neurodecode.data.preprocess import config_dict, load_preprocess_config
    from neurodecode.hub import build_model, export_model

    torch.manual_seed(0)
    config = load_preprocess_config(
        "seizure", overrides={"resample": 128.0, "windows": {"stride_s": 2.0}}
    )
    model = build_model(
        "dual_branch_conformer",
        size="small",
        n_chans=len(DOUBLE_BANANA),
        n_outputs=2,
        n_times=512,
        sfreq=128.0,
    )
    return export_model(
        model.eval(),
        folder,
        ch_names=list(DOUBLE_BANANA),
        ch_pos=channel_positions(DOUBLE_BANANA),
        preprocessing=config_dict(config),
        labels=["background", "seizure"],
        task="seizure",
    )


def child(model: str, edf: str, output: str, threads: int | None) -> None:
    """Run in a fresh process: predict from file to events; print timing and peak RSS."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from neurodecode.predict import load_detector, predict_recording

    detector = load_detector(model)
    loaded_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started, cpu_started = time.perf_counter(), time.process_time()
    result = predict_recording(edf, detector, output, figure=False, progress=False)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"elapsed_s": elapsed, "cpu_s": cpu, "duration_s": result.duration_s,
                      "peak_rss_mb": peak_mb, "loaded_rss_mb": loaded_mb, "n_windows": int(result.probabilities.size)}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 24.0])
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: torch default, as the CLI)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the EDF files")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, threads=args.threads or None)
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="neurodecode-bench-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        model = export_benchmark_model(work / "model")
        signal, names = source_signal()
        where = machine()
        for hours in args.hours:
            edf = work / f"eeg_{hours:g}h.edf"
            if not edf.is_file():
                write_long_edf(edf, int(hours * 3600), signal, names)
            done = subprocess.run(
                [sys.executable, __file__, "--threads", str(args.threads),
                 "--child", str(model), str(edf), str(work / "out")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            realtime = figures["duration_s"] / figures["elapsed_s"]
            label = f"{hours:g}h_19ch_256Hz"
            print(json.dumps({"name": f"predict_realtime_factor_{label}",
                              "value": round(realtime, 1), "unit": "x real time",
                              "baseline": f"target {TARGET_REALTIME:g}x",
                              "ratio": round(realtime / TARGET_REALTIME, 3),
                              "machine": where, "threads": args.threads,
                              "elapsed_s": round(figures["elapsed_s"], 1),
                              "load_after": round(os.getloadavg()[0], 1),
                              "n_windows": figures["n_windows"]}), flush=True)  # fmt: skip
            per_cpu = figures["duration_s"] / figures["cpu_s"]
            print(json.dumps({"name": f"predict_cpu_time_realtime_factor_{label}",
                              "value": round(per_cpu, 1), "unit": "x real time per CPU second",
                              "baseline": f"target {TARGET_REALTIME:g}x",
                              "ratio": round(per_cpu / TARGET_REALTIME, 3),
                              "machine": where, "cpu_s": round(figures["cpu_s"], 1)}),
                  flush=True)  # fmt: skip
            print(json.dumps({"name": f"predict_peak_rss_{label}",
                              "value": round(figures["peak_rss_mb"], 1), "unit": "MB",
                              "baseline": "peak RSS with the model loaded, before predicting "
                                          f"({figures['loaded_rss_mb']:.0f} MB)",
                              "ratio": round(figures["peak_rss_mb"] / figures["loaded_rss_mb"], 3),
                              "edf_mb": round(edf.stat().st_size / 2**20, 1),
                              "machine": where}), flush=True)  # fmt: skip
            if args.keep is None:
                edf.unlink()
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
