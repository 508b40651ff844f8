"""Quality control never removes what a task looks for (issue 12, item 3).

Seizure tasks reject no window by amplitude; the QC report counts rejected windows per class
and warns when a class loses more than ``artifacts.windows.warn_class_loss`` of them. Checked
on the real Bonn set S segments whose ictal amplitude the former 3000 µV limit removed.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from omegaconf import OmegaConf

from neurodecode import train
from neurodecode.data.artifacts import RecordingQC, build_report, format_summary, reject_windows
from neurodecode.data.prepare import prepare_dataset
from neurodecode.tasks.datasets import prepare_data

# Three ictal segments of set S that reach several mV (whole seizures the 3000 µV limit
# removed), one ordinary ictal segment and two healthy ones.
HIGH_AMPLITUDE_ICTAL = ("S037", "S047", "S068")
SEGMENTS = f"[{','.join(HIGH_AMPLITUDE_ICTAL)},S001,Z001,Z002]"


def bonn_recipe_cache(tmp_path, *overrides: str):
    """The window cache ``recipe=seizure data=bonn`` trains on, for the six segments."""
    cfg = train.compose(
        ["recipe=seizure", "data=bonn", f"+data.prepare.subjects={SEGMENTS}",
         "+data.prepare.num_workers=0", *overrides]
    )  # fmt: skip
    return prepare_data(cfg, tmp_path)


def windows_of(cache, segment: str) -> np.ndarray:
    """Labels of the cached windows of one Bonn segment."""
    return cache.index.loc[cache.index["subject"] == segment, "label"].to_numpy()


@pytest.mark.network
def test_high_amplitude_ictal_segments_survive_the_seizure_defaults(
    neurodecode_home, mirror_url, monkeypatch, tmp_path
):
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    cache = bonn_recipe_cache(tmp_path)
    assert list(cache.classes) == ["background", "seizure"]
    for segment in HIGH_AMPLITUDE_ICTAL:  # 23.6 s → 10 windows of 4 s every 2 s, all ictal
        assert windows_of(cache, segment).tolist() == [1] * 10, segment
    summary = cache.qc["summary"]
    assert summary["windows_per_class"]["seizure"] == {
        "windows": 40,
        "rejected": 0,
        "rejected_fraction": 0.0,
    }
    assert summary["warnings"] == []


@pytest.mark.network
def test_the_dataset_preprocessing_of_bonn_keeps_them_too(
    neurodecode_home, mirror_url, monkeypatch
):
    """``neurodecode data prepare bonn`` (configs/preprocess/bonn.yaml) keeps them as well."""
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    cache = prepare_dataset("bonn", [f"subjects={SEGMENTS}", "num_workers=0"], progress=False)
    for segment in HIGH_AMPLITUDE_ICTAL:
        assert len(windows_of(cache, segment)) == 10, segment
    assert not cache.qc["summary"]["windows_rejected"]


@pytest.mark.network
def test_an_amplitude_limit_that_removes_seizures_is_counted_per_class_and_warned(
    neurodecode_home, mirror_url, monkeypatch, tmp_path, caplog
):
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    limit = ["data.prepare.artifacts.windows.max_ptp_uv=3000.0",
             "data.prepare.artifacts.windows.max_abs_uv=3000.0"]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="neurodecode.data.build"):
        cache = bonn_recipe_cache(tmp_path, *limit)
    seizure = cache.qc["summary"]["windows_per_class"]["seizure"]
    background = cache.qc["summary"]["windows_per_class"]["background"]
    assert background == {"windows": 20, "rejected": 0, "rejected_fraction": 0.0}
    # measured: 28 of the 40 ictal windows (S037, S047 whole; S068 all but 2) go
    assert seizure["windows"] == 40 and seizure["rejected"] >= 20
    for segment in ("S037", "S047"):
        assert len(windows_of(cache, segment)) == 0
    (warning,) = cache.qc["summary"]["warnings"]
    assert "'seizure' windows" in warning and "2.0%" in warning
    assert any("'seizure' windows" in r.getMessage() for r in caplog.records)
    assert "WARNING: window rejection removed" in format_summary(cache.qc)


def test_a_limit_set_to_none_is_not_checked():
    """An amplitude limit of None keeps a 5 mV window that a 3 mV limit rejects."""
    signal = np.zeros((1, 400), dtype=np.float32)
    signal[0, :100] = np.sin(np.linspace(0, 20, 100)) * 2500.0  # 5 mV peak to peak
    signal[0, 100:] = np.sin(np.linspace(0, 60, 300)) * 20.0
    starts, good = np.array([0, 200]), np.array([True])
    limits = {"min_ptp_uv": 0.5, "max_plateau_fraction": 0.1}
    strict = OmegaConf.create({**limits, "max_ptp_uv": 3000.0, "max_abs_uv": 3000.0})
    none = OmegaConf.create({**limits, "max_ptp_uv": None, "max_abs_uv": None})
    assert reject_windows(signal, starts, 100, 100.0, good, strict).tolist() == ["peak_to_peak", ""]
    assert reject_windows(signal, starts, 100, 100.0, good, none).tolist() == ["", ""]


def test_report_counts_per_class_and_warns_above_the_threshold():
    first, second = RecordingQC("a", "a.edf"), RecordingQC("b", "b.edf")
    first.count_by_label(np.array([0, 0, 0, 1, -1]), np.array([True, False, False, False, True]))
    second.count_by_label(np.array([0] * 97 + [1] * 3), np.zeros(100, dtype=bool))
    report = build_report([first, second], classes=["rest", "left"], warn_class_loss=0.02)
    counts = report["summary"]["windows_per_class"]
    assert counts["rest"] == {"windows": 100, "rejected": 1, "rejected_fraction": 0.01}
    assert counts["left"]["rejected"] == 0 and counts["unlabelled"]["rejected"] == 1
    # 1 % of "rest" is under 2 %; the one unlabelled window lost is 100 %
    assert len(report["summary"]["warnings"]) == 1
    assert "'unlabelled'" in report["summary"]["warnings"][0]
    silent = build_report([first, second], classes=["rest", "left"], warn_class_loss=None)
    assert silent["summary"]["warnings"] == []
