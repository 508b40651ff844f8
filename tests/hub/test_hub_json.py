"""config.json is strict JSON: unknown positions written as null, read back as NaN; old
exports with bare NaN still load, and are rewritten strictly when copied or pushed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from neurodecode.hub import export_model, export_run, from_pretrained, push_to_hub
from tests.hub.hub_helpers import CH_NAMES

#: Channel 1 and 3 have no known position (as MNE writes it: NaN in ``loc``).
CHS_INFO = [
    {"ch_name": name, "loc": [math.nan] * 12 if i in (1, 3) else [0.01 * i, 0.02, 0.03] + [0.0] * 9}
    for i, name in enumerate(CH_NAMES)
]


def _strict_loads(text: str):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token} in config.json")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture()
def exported(tiny_model, tmp_path):
    model = tiny_model(chs_info=CHS_INFO).eval()
    folder = export_model(model, tmp_path / "export", metrics={"val": {"loss": math.nan}})
    return model, folder


def _expected_positions() -> np.ndarray:
    return np.array([ch["loc"][:3] for ch in CHS_INFO])


def _check_loaded(folder, model) -> None:
    pretrained = from_pretrained(folder)
    np.testing.assert_array_equal(pretrained.ch_pos, _expected_positions())  # NaN where NaN
    locs = [ch["loc"] for ch in pretrained.config["model"]["chs_info"]]
    assert all(isinstance(v, float) for loc in locs for v in loc)  # floats, never None
    assert math.isnan(locs[1][0]) and locs[2][:3] == [0.02, 0.02, 0.03]
    x = torch.randn(2, 4, 64)
    with torch.no_grad():
        assert torch.equal(pretrained.model(x), model(x))


def test_unknown_positions_are_written_as_null_and_read_back_as_nan(exported):
    model, folder = exported
    text = (folder / "config.json").read_text()
    config = _strict_loads(text)  # raises on NaN / Infinity
    assert config["signal"]["ch_pos"][1] == [None, None, None]
    assert config["signal"]["ch_pos"][2] == [0.02, 0.02, 0.03]
    assert config["model"]["chs_info"][3]["loc"] == [None] * 12
    assert config["metrics"] == {"val": {"loss": None}}
    assert "NaN" not in (folder / "README.md").read_text()
    _check_loaded(folder, model)


def _write_legacy(folder) -> None:
    """Rewrite config.json as neurodecode did before: bare NaN for unknown values."""
    config = json.loads((folder / "config.json").read_text())
    for row in config["signal"]["ch_pos"]:
        row[:] = [math.nan if v is None else v for v in row]
    for ch in config["model"]["chs_info"]:
        ch["loc"] = [math.nan if v is None else v for v in ch["loc"]]
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    assert "NaN" in (folder / "config.json").read_text()


def test_legacy_config_with_bare_nan_still_loads(exported):
    model, folder = exported
    _write_legacy(folder)
    _check_loaded(folder, model)


def test_copying_a_legacy_pretraining_export_writes_strict_json(exported, tmp_path):
    model, folder = exported
    _write_legacy(folder)
    run = tmp_path / "run"  # a pretraining run: its encoder exported to run/encoder/
    run.mkdir()
    folder.rename(run / "encoder")
    out = export_run(run, tmp_path / "copy")
    config = _strict_loads((out / "config.json").read_text())
    assert config["signal"]["ch_pos"][3] == [None, None, None]
    _check_loaded(out, model)


def test_pushing_a_legacy_export_uploads_strict_json(hub, exported):
    model, folder = exported
    _write_legacy(folder)
    push_to_hub(folder, "lab/legacy")
    pretrained = from_pretrained("lab/legacy")
    _strict_loads((pretrained.source / "config.json").read_text())
    assert "NaN" in (folder / "config.json").read_text()  # the local folder is left as it was
    _check_loaded(pretrained.source, model)
