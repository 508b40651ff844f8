"""Issue 15.1-3 at prediction: provenance printed and in sidecars, the simulated-data warning,
calibrated confidences at full precision, and one set of files per input with a folder index."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from neurodecode.predict import load_detector, predict
from neurodecode.predict.__main__ import main
from neurodecode.tasks.seizure import dataset_kind
from tests.conftest import require_shared

CHBMIT = "excerpts/chbmit"
PROVENANCE = {
    "datasets": ["simulated"],
    "kind": "simulated",
    "simulated_only": True,
    "montage": "double_banana",
    "parts": {
        "train": {"subjects": ["02", "04"], "n_recordings": 4, "hours": 0.27, "n_seizures": 4},
        "valid": {"subjects": ["01"], "n_recordings": 2, "hours": 0.13, "n_seizures": 2},
        "test": {"subjects": ["03"], "n_recordings": 2, "hours": 0.13, "n_seizures": 2},
    },
    "selection": {"criterion": "event_f1", "monitor": "val/selection"},
    "test_event_scores": {
        "sensitivity": 1.0,
        "precision": 1.0,
        "f1": 1.0,
        "fp_per_24h": 0.0,
        "n_seizures": 2,
        "n_subjects": 1,
        "hours": 0.13,
        "fp_per_24h_extrapolated": True,
    },  # fmt: skip
}


@pytest.fixture(scope="module")
def simulated_export(exported_detector: Path, tmp_path_factory) -> Path:
    """The session's detector with the provenance and calibration a seizure run records."""
    out = tmp_path_factory.mktemp("with_provenance")
    shutil.copytree(exported_detector, out, dirs_exist_ok=True)
    config = json.loads((out / "config.json").read_text())
    calibration = {"temperature": 3.0, "threshold": 0.3, "fitted_on": "validation"}
    config["provenance"] = PROVENANCE | {"calibration": calibration}
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_simulated_model_on_real_crops_warns_and_writes_provenance_sidecars(
    simulated_export, tmp_path, capsys
):
    folder = require_shared(CHBMIT)
    status = main([f"checkpoint={simulated_export}", f"input={folder}", f"output={tmp_path}",
                   "figure=false"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 0, err
    # a boxed, multi-line warning on stderr, and the provenance in words
    assert "#" * 40 in err and "## WARNING: THIS MODEL WAS TRAINED ONLY ON SIMULATED EEG." in err
    assert "trained on: 2 subject(s), 4 recording(s), 0.27 h, 4 annotated seizure event(s)" in err
    assert "extrapolated from under an hour" in err
    for edf in folder.glob("*.edf"):
        sidecar = json.loads((tmp_path / f"{edf.stem}_events.json").read_text())
        assert sidecar["events_file"] == f"{edf.stem}_events.tsv"
        assert sidecar["provenance"]["simulated_only"] is True
        assert sidecar["provenance"]["calibration"]["temperature"] == 3.0
        assert sidecar["threshold"] == 0.3 and "SIMULATED" in sidecar["warnings"][0]
        assert "temperature 3" in sidecar["columns"]["confidence"]
        rows = (tmp_path / f"{edf.stem}_events.tsv").read_text().splitlines()[1:]
        for row in rows:
            confidence = row.split("\t")[3]
            assert confidence == "n/a" or (len(confidence.split(".")[1]) >= 4
                                           and float(confidence) < 1.0), row  # fmt: skip
    index = (tmp_path / "index.tsv").read_text().splitlines()
    assert index[0].startswith("input\tstatus") and len(index) == 3


def test_temperature_divides_the_log_odds(exported_detector, simulated_export, simulated_root):
    plain, calibrated = load_detector(exported_detector), load_detector(simulated_export)
    assert (plain.temperature, calibrated.temperature) == (1.0, 3.0)
    assert plain.post.threshold == 0.5 and calibrated.post.threshold == 0.3
    assert plain.provenance["recorded"] is False and plain.provenance["kind"] == "unknown"
    assert (
        calibrated.provenance["recorded"] is True and calibrated.provenance["kind"] == "simulated"
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, len(plain.ch_names), plain.n_times)).astype(np.float32)
    mask = np.ones(len(plain.ch_names), bool)
    p1, p3 = plain.probabilities(x, mask), calibrated.probabilities(x, mask)
    assert p1.dtype == np.float64
    np.testing.assert_allclose(np.log(p3 / (1 - p3)), np.log(p1 / (1 - p1)) / 3.0, rtol=1e-6)


def test_each_input_keeps_its_files_and_the_folder_index_grows(simulated_export, tmp_path):
    folder = require_shared(CHBMIT)
    first, second = sorted(folder.glob("*.edf"))
    out = tmp_path / "out"
    predict(simulated_export, first, out, figure=False, progress=False)
    predict(simulated_export, second, out, figure=False, progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(Path(r["input"]).name for r in summary["recordings"]) == [first.name, second.name]
    assert summary["n_recordings"] == 2
    for edf in (first, second):
        own = json.loads((out / f"{edf.stem}_summary.json").read_text())
        assert own["input"] == str(edf) and own["status"] == "ok"
    # the same file name from another folder does not overwrite the first one's outputs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(first, elsewhere / first.name)
    again = predict(simulated_export, elsewhere / first.name, out, figure=False, progress=False)
    assert Path(again["recordings"][0]["outputs"]["events"]).name == f"{first.stem}_2_events.tsv"
    assert json.loads((out / f"{first.stem}_summary.json").read_text())["input"] == str(first)
    # predicting the same input again replaces its row instead of adding one
    predict(simulated_export, first, out, figure=False, progress=False)
    rows = (out / "index.tsv").read_text().splitlines()[1:]
    assert len(rows) == 3 and all("\tok\t" in row for row in rows)


def test_dataset_kind_comes_from_the_manifest():
    assert dataset_kind("simulated") == "simulated"
    assert dataset_kind("chbmit") == "real"
    assert dataset_kind("no-such-dataset") == "unknown"


def test_confidence_keeps_its_precision_near_one():
    from neurodecode.data.annotations import format_probability

    assert format_probability(0.5) == "0.5000"
    assert format_probability(0.99997) == "0.99997"
    assert format_probability(1 - 1e-9) == "0.999999999"
    assert format_probability(1.0) == "1"
