"""The model card and the provenance lines say what a seizure model was trained on."""

from __future__ import annotations

from neurodecode.hub.card import boxed, provenance_lines, render_card

CONFIG = {
    "model": {"_target_": "dual_branch_conformer", "n_chans": 2},
    "neurodecode_version": "0",
    "signal": {"ch_names": ["Fp1-F7", "F7-T7"], "sfreq": 128.0, "n_times": 512},
    "task": "seizure",
    "dataset": "simulated",
    "labels": ["background", "seizure"],
    "metrics": {},
    "card": {},
    "provenance": {
        "datasets": ["simulated"], "kind": "simulated", "simulated_only": True,
        "montage": "double_banana",
        "parts": {"train": {"subjects": ["02", "04"], "n_recordings": 4, "hours": 0.27,
                            "n_seizures": 4}},
        "selection": {"criterion": "sensitivity_at_fa", "fa_per_24h": 2.0},
        "test_event_scores": {"sensitivity": 0.5, "precision": 1.0, "f1": 0.667,
                              "fp_per_24h": 0.0, "n_seizures": 2, "n_subjects": 1,
                              "hours": 0.13, "fp_per_24h_extrapolated": True},
        "calibration": {"temperature": 2.5, "threshold": 0.35},
    },
}  # fmt: skip


def test_card_shows_training_data_selection_calibration_and_the_warning():
    card = render_card(CONFIG)
    assert "## Training data, selection and calibration" in card
    assert "TRAINED ONLY ON SIMULATED EEG" in card
    assert "trained on: 2 subject(s), 4 recording(s), 0.27 h, 4 annotated seizure event(s)" in card
    assert "sensitivity_at_fa (budget 2 false alarms per 24 h)" in card
    assert "temperature 2.5, threshold 0.35" in card
    assert "pooled over 2 seizure(s) of 1 subject(s)" in card and "extrapolated" in card


def test_a_model_without_provenance_says_so_and_a_real_one_has_no_warning():
    assert provenance_lines(None) == ["Training data: not recorded with this model (unknown)."]
    real = CONFIG | {"provenance": CONFIG["provenance"] | {"kind": "real", "simulated_only": False}}
    assert "SIMULATED" not in render_card(real)
    assert "## Training data" not in render_card(CONFIG | {"provenance": None})


def test_boxed_lines_share_one_frame():
    lines = boxed(["short", "a longer line"]).splitlines()
    assert len({len(line) for line in lines}) == 1 and lines[0] == "#" * len(lines[0])
