"""Prediction on real CHB-MIT excerpts and simulated recordings: outputs, bad input, streaming."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurodecode.data.annotations import read_szcore_events
from neurodecode.errors import ChannelError, CheckpointError, ConfigError, PreprocessingError
from neurodecode.predict import (
    StreamDetector,
    load_detector,
    predict,
    predict_recording,
)
from neurodecode.predict.__main__ import main
from tests.conftest import require_shared

CHBMIT = "excerpts/chbmit"


@pytest.fixture(scope="module")
def detector(exported_detector: Path):
    return load_detector(exported_detector)


def _check_outputs(prediction, duration_s: float) -> None:
    events = read_szcore_events(prediction.outputs["events"])
    assert set(events["eventType"]) <= {"sz", "bckg"}
    assert events["recordingDuration"].iloc[0] == pytest.approx(duration_s)
    table = pd.read_csv(prediction.outputs["probabilities"])
    assert list(table.columns) == ["second", "p_seizure", "in_event"]
    assert len(table) == int(np.ceil(duration_s))
    assert table["second"].tolist() == list(range(len(table)))
    assert table["p_seizure"].between(0, 1).all()
    figure = Path(prediction.outputs["figure"])
    assert figure.stat().st_size > 10_000 and figure.read_bytes()[:4] == b"\x89PNG"


def test_chbmit_excerpts_through_the_command_line(exported_detector, tmp_path, capsys):
    folder = require_shared(CHBMIT)
    status = main([f"checkpoint={exported_detector}", f"input={folder}", f"output={tmp_path}"])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "summary.json").read_text())
    names = sorted(Path(r["input"]).name for r in summary["recordings"])
    assert names == sorted(p.name for p in folder.glob("*.edf"))
    assert summary["n_failed"] == 0 and summary["channels"][0] == "Fp1-F7"
    for entry in summary["recordings"]:
        assert entry["duration_s"] == pytest.approx(41.0)
        assert entry["n_windows"] == 19  # (41 s - 4 s) / 2 s + 1 at 128 Hz
        stem = Path(entry["input"]).stem
        assert read_szcore_events(tmp_path / f"{stem}_events.tsv").shape[0] >= 1
        assert len(pd.read_csv(tmp_path / f"{stem}_probabilities.csv")) == 41
        assert (tmp_path / f"{stem}_review.png").stat().st_size > 10_000
    assert "ok" in capsys.readouterr().out


def test_simulated_recording_finds_its_seizure_in_small_spans(detector, simulated_root, tmp_path):
    path = sorted(simulated_root.rglob("*_eeg.edf"))[0]
    whole = predict_recording(path, detector, tmp_path / "whole", figure=True)
    _check_outputs(whole, 240.0)
    # spans of 60 s (filter margins, per-span scaling) give nearly the same probabilities
    spans = predict_recording(path, detector, None, chunk_s=60.0)
    assert spans.qc["spans"] == 4
    assert np.abs(spans.probabilities - whole.probabilities).max() < 0.25
    reference = read_szcore_events(path.with_name(path.name.replace("_eeg.edf", "_events.tsv")))
    sz = reference[reference["eventType"] == "sz"]
    hits = [
        any(a < on + dur + 60 and b > on - 30 for a, b in whole.events)
        for on, dur in zip(sz["onset"], sz["duration"], strict=True)
    ]
    assert any(hits), (whole.events, sz)


def test_bids_folder_goes_on_past_a_corrupt_file(detector, simulated_root, tmp_path):
    data = tmp_path / "bids"
    shutil.copytree(simulated_root, data)
    bad = data / "sub-03" / "ses-01" / "eeg"
    bad.mkdir(parents=True)
    shutil.copy(
        require_shared("faults/S001R02_truncated.edf"),
        bad / "sub-03_ses-01_task-szMonitoring_run-01_eeg.edf",
    )
    summary = predict(detector, data, tmp_path / "out", figure=False)
    assert summary["n_ok"] == 2 and summary["n_failed"] == 1
    (failure,) = summary["failed"]
    assert "sub-03" in failure["input"] and "truncated" in failure["message"]
    written = sorted(
        p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*_events.tsv")
    )
    assert [str(p.parent) for p in written] == ["sub-01/ses-01/eeg", "sub-02/ses-01/eeg"]


def test_exit_status_tells_a_partial_failure_from_a_total_one(
    exported_detector, simulated_root, tmp_path, capsys
):
    """3 when some recordings failed and the others were written, 1 when none could be."""
    data = tmp_path / "bids"
    shutil.copytree(simulated_root, data)
    truncated = require_shared("faults/S001R02_truncated.edf")
    shutil.copy(truncated, data / "sub-01_truncated_eeg.edf")
    args = [f"checkpoint={exported_detector}", "figure=false"]
    assert main([*args, f"input={data}", f"output={tmp_path / 'some'}"]) == 3
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    shutil.copy(truncated, only_bad / "a_eeg.edf")
    assert main([*args, f"input={only_bad}", f"output={tmp_path / 'none'}"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_missing_channels_are_listed_with_the_mapping_tried(detector, tmp_path):
    import edfio

    rng = np.random.default_rng(0)
    names = ["FP1-F7", "F7-T7", "T7-P7", "P7-O1"]  # a quarter of the double banana
    common = np.cumsum(rng.normal(0, 5, 256 * 30))  # correlated channels, as real EEG
    common -= np.convolve(common, np.ones(256) / 256, mode="same")
    signals = [edfio.EdfSignal(common + rng.normal(0, 5, common.size), 256, label=n,
                               physical_dimension="uV", physical_range=(-500, 500))
               for n in names]  # fmt: skip
    path = tmp_path / "partial.edf"
    edfio.Edf(signals).write(path)
    with pytest.raises(ChannelError) as info:
        predict_recording(path, detector)
    message = str(info.value)
    assert "14 of the model's 18 channels are missing" in message
    assert "Fz-Cz" in message and "FP1-F7 → Fp1-F7" in message and "double_banana" in message
    result = predict_recording(path, detector, allow_missing_channels=True)
    assert result.qc["missing_channels"][:2] == ["Fp1-F3", "F3-C3"]


def test_unusable_rate_and_too_short_recordings_are_refused(detector, tmp_path):
    import edfio

    def write(name, sfreq, seconds):
        signals = [edfio.EdfSignal(np.zeros(int(sfreq * seconds)), sfreq, label=f"{a}-{b}",
                                   physical_dimension="uV", physical_range=(-500, 500))
                   for a, b in (("Fp1", "F7"), ("F7", "T7"))]  # fmt: skip
        edfio.Edf(signals).write(tmp_path / name)
        return tmp_path / name

    with pytest.raises(PreprocessingError, match="Nyquist"):
        predict_recording(write("slow.edf", 64, 20), detector, allow_missing_channels=True)
    with pytest.raises(PreprocessingError, match="shorter than one 4-s window"):
        predict_recording(write("short.edf", 256, 3), detector, allow_missing_channels=True)


def test_command_line_refuses_unknown_keys(capsys):
    assert main(["checkpoint=x", "input=y", "output=z", "treshold=0.3"]) == 2
    assert "treshold" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="output"):
        from neurodecode.predict.__main__ import load_config

        load_config(["checkpoint=x", "input=y"])


@pytest.mark.slow
def test_streaming_replay_agrees_with_offline_within_its_latency(detector, simulated_root):
    from neurodecode.data.io import read_recording

    path = sorted(simulated_root.rglob("*_eeg.edf"))[0]
    offline = predict_recording(path, detector)
    recording = read_recording(path)
    stream = StreamDetector(detector, recording.ch_names, recording.sfreq, context_s=120)
    emitted = []
    step = int(recording.sfreq)  # one-second chunks, as an amplifier would send them
    for start in range(0, recording.n_times, step):
        emitted += stream.push(recording.signal[:, start : start + step])
    emitted += stream.close()
    assert len(stream.probabilities) == len(offline.probabilities)
    assert np.abs(np.asarray(stream.probabilities) - offline.probabilities).max() < 0.25
    onsets = [e for e in emitted if e.kind == "onset"]
    assert len(onsets) == len(offline.events) >= 1
    for event, (a, _) in zip(onsets, offline.events, strict=True):
        assert abs(event.onset_s - a) <= stream.latency_s
        assert 0 < event.delay_s <= stream.latency_s


def test_run_folder_and_its_ckpt_load_like_the_export(exported_detector, detector, tmp_path):
    """A training run (results.json + Lightning checkpoint) is read weights-only."""
    import torch
    from safetensors.torch import load_file

    config = json.loads((exported_detector / "config.json").read_text())
    arch = {k: v for k, v in config["model"].items() if k != "chs_info"}
    signal = config["signal"]
    state = load_file(str(exported_detector / "model.safetensors"))
    run = tmp_path / "runs" / "seizure" / "2026-01-01_00-00-00"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "best-epoch=000.ckpt"
    hparams = {"model": arch, "n_chans": len(signal["ch_names"]),
               "n_outputs": 2, "n_times": signal["n_times"], "sfreq": signal["sfreq"],
               "ch_names": signal["ch_names"], "ch_pos": signal["ch_pos"],
               "class_names": ["background", "seizure"], "threshold": 0.7}  # fmt: skip
    torch.save({"state_dict": {f"encoder.{k}": v for k, v in state.items()},
                "hyper_parameters": hparams}, ckpt)  # fmt: skip
    results = {"checkpoints": {"best": str(ckpt.relative_to(run))},
               "config": {"preprocess": config["preprocessing"],
                          "task": {"module": {"_target_": "seizure", "threshold": 0.7}}},
               "data": {"dataset": "simulated", "classes": ["background", "seizure"]}}  # fmt: skip
    (run / "results.json").write_text(json.dumps(results))
    x = np.random.default_rng(0).normal(size=(3, 18, detector.n_times)).astype(np.float32)
    mask = np.ones(18, bool)
    expected = detector.probabilities(x, mask)
    for source in (run, ckpt):
        loaded = load_detector(source)
        assert loaded.post.threshold == 0.7  # the run's own post-processing
        assert loaded.post.min_duration_s == detector.post.min_duration_s
        np.testing.assert_array_equal(loaded.probabilities(x, mask), expected)
    lonely = tmp_path / "lonely.ckpt"
    shutil.copy(ckpt, lonely)
    with pytest.raises(CheckpointError, match="run folder"):
        load_detector(lonely)


def test_lsl_needs_mne_lsl_and_says_so():
    import importlib.util

    from neurodecode.predict import lsl_chunks

    if importlib.util.find_spec("mne_lsl") is not None:
        pytest.skip("mne-lsl is installed; the message for its absence cannot be shown")
    with pytest.raises(ConfigError, match="pip install mne-lsl"):
        lsl_chunks("EEG")


def test_spans_filter_exactly_like_the_whole_recording(detector, simulated_root):
    """With per-span decisions taken out (fixed scaling, fixed notch, no channel QC), spans
    of 30 s read with their filter margins give the windows of one pass over the file."""
    import dataclasses

    from omegaconf import OmegaConf

    from neurodecode.data.io import open_recording
    from neurodecode.predict import pipeline

    config = OmegaConf.merge(
        detector.preprocess,
        {
            "scaling": {"method": "fixed"},
            "notch": {"line_freq": 50},
            "artifacts": {"enabled": False},
        },
    )
    fixed = dataclasses.replace(detector, preprocess=config)
    reader = open_recording(sorted(simulated_root.rglob("*_eeg.edf"))[1])
    grid = pipeline.make_grid(fixed, reader.header.sfreq, reader.n_times)
    starts = grid.window_starts()
    whole = pipeline.process_span(fixed, reader, grid, 0, grid.n_out, starts).x
    chunk = grid.chunk(30.0)
    parts = []
    for lo in range(0, grid.n_out, chunk):
        inside = starts[(starts >= lo) & (starts < lo + chunk)]
        if inside.size:
            hi = int(inside[-1]) + grid.window
            parts.append(pipeline.process_span(fixed, reader, grid, lo, hi, inside).x)
    assert len(parts) == 8
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_overlapped_spans_give_the_sequential_results(detector, simulated_root):
    """Preprocessing the next span in a background thread changes nothing in the output,
    and torch gets back the thread it lent to the preprocessing."""
    import torch

    path = sorted(simulated_root.rglob("*_eeg.edf"))[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        overlapped = predict_recording(path, detector, None, chunk_s=60.0, overlap=True)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    sequential = predict_recording(path, detector, None, chunk_s=60.0, overlap=False)
    assert overlapped.qc["spans"] == 4
    np.testing.assert_array_equal(overlapped.probabilities, sequential.probabilities)
    assert overlapped.qc == sequential.qc and overlapped.events == sequential.events
