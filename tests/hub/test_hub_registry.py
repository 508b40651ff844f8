"""Every registered model goes through the Hub format the same way (no test per model)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from neurodecode.hub import build_model, export_model, from_pretrained
from neurodecode.registry import MODELS

CASES = [pytest.param(name, {}, id=name) for name in MODELS.names() if name != "braindecode"]
CASES.append(pytest.param("braindecode", {"name": "EEGNetv4"}, id="braindecode-EEGNetv4"))
NAMES = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3",
         "Pz", "P4", "P8", "O1", "O2"]  # fmt: skip


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_export_then_load_is_bit_identical(name, extra, tmp_path):
    if name == "braindecode" and importlib.util.find_spec("braindecode") is None:
        pytest.skip("braindecode is not installed")
    rng = np.random.default_rng(0)
    chs_info = [{"ch_name": n, "loc": (rng.normal(size=3) * 0.08).tolist() + [0.0] * 9}
                for n in NAMES]  # fmt: skip
    torch.manual_seed(0)
    model = build_model(name, n_chans=19, n_outputs=2, n_times=512, sfreq=256.0,
                        chs_info=chs_info, **extra).eval()  # fmt: skip
    folder = export_model(model, tmp_path, labels=["a", "b"])
    pretrained = from_pretrained(folder)
    assert type(pretrained.model) is type(model) and pretrained.ch_names == NAMES
    x = torch.randn(2, 19, 512)
    with torch.no_grad():
        assert torch.equal(pretrained.model(x), model(x))
    assert MODELS.get(pretrained.config["model"]["_target_"]) is MODELS.get(name)
