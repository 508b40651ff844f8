"""Every registered model goes through the Hub format the same way (no test per model)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from neurodecode.finetune import initialise, read_init_source
from neurodecode.hub import build_model, export_model, from_pretrained
from neurodecode.hub.format import WEIGHTS_NAME
from neurodecode.registry import MODELS
from tests.models.foundation_cases import TINY

# braindecode's foundation models in tiny versions (REVE needs its position bank: skipped)
CASES = [
    pytest.param(name, TINY.get(name, {}), id=name)
    for name in MODELS.names()
    if name not in ("braindecode", "reve")
]
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


def test_exports_from_before_the_encoder_base_still_load(tmp_path):
    """Weights that name the head ``head.*`` and configs naming the old module path load."""
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = build_model("patch_conformer", n_chans=4, n_outputs=2, n_times=128, sfreq=64.0,
                        dim=16, depth=1, n_heads=2).eval()  # fmt: skip
    folder = export_model(model, tmp_path / "old", ch_names=NAMES[:4])
    state = load_file(folder / WEIGHTS_NAME)
    legacy = {k.replace("final_layer.", "head.", 1): v for k, v in state.items()}
    assert legacy.keys() != state.keys()
    save_file(legacy, str(folder / WEIGHTS_NAME))
    config = json.loads((folder / "config.json").read_text())
    del config["weights"]["sha256"]
    (folder / "config.json").write_text(json.dumps(config))
    task = torch.nn.Module()
    task.encoder, task.lr = MODELS.build(
        "patch_conformer", n_chans=4, n_outputs=3, n_times=128, sfreq=64.0, dim=16, depth=1,
        n_heads=2,
    ), 1e-3  # fmt: skip
    report = initialise(task, read_init_source(folder), strategy="frozen", sfreq=64.0)
    assert report.missing and all(k.startswith("final_layer.") for k in report.missing)
    assert not report.unexpected
    config["model"]["_target_"] = "neurodecode.models.pretraining.PatchConformer"
    (folder / "config.json").write_text(json.dumps(config))

    loaded = from_pretrained(folder).model
    x = torch.randn(2, 4, 128)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
