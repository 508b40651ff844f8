"""A neurodecode encoder in Open EEG Bench: its backbone loader reads our exported weights
from a (loopback) Hub repository, its heads and fine-tuning strategies (frozen, LoRA) wrap
our model, and its training loop (braindecode's EEGClassifier) fine-tunes it, as
``open_eeg_bench.experiment.Experiment.run`` does, on a small local windowed dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import TensorDataset

from neurodecode.hub import build_model, export_model

pytest.importorskip("open_eeg_bench", reason="Open EEG Bench is in the dev extra")

CHANNELS = ["C3", "Cz", "C4", "Pz"]
SIGNAL = {"n_chans": 4, "n_outputs": 2, "n_times": 256, "sfreq": 128.0}
CHS_INFO = [{"ch_name": name} for name in CHANNELS]


@pytest.fixture()
def hub_repo(olah_mirror, tmp_path):
    """A tiny dual-branch conformer exported by neurodecode, served as ``my-lab/dbc-tiny``."""
    torch.manual_seed(0)
    model = build_model("dual_branch_conformer", size="tiny", chs_info=CHS_INFO, **SIGNAL)
    folder = export_model(model, tmp_path / "export", ch_names=CHANNELS)
    olah_mirror("my-lab/dbc-tiny", folder)
    return "my-lab/dbc-tiny", load_file(str(folder / "model.safetensors"))


def _windows(n=48, seed=0):
    """Two classes told apart by a 10 Hz rhythm in the first channel (scaled units)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, 4, 256)).astype(np.float32)
    x[y == 1, 0] += 2 * np.sin(2 * np.pi * 10 * np.arange(256) / 128.0).astype(np.float32)
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


def _backbone(repo_id):
    from open_eeg_bench.backbone import PretrainedBackbone

    return PretrainedBackbone(model_cls="neurodecode.models.conformer.DualBranchConformer",
                              model_kwargs={"size": "tiny"}, hub_repo=repo_id)  # fmt: skip


def test_backbone_loader_reads_every_exported_tensor(hub_repo):
    repo_id, exported = hub_repo
    model = _backbone(repo_id).build(chs_info=CHS_INFO, **SIGNAL)
    state = model.state_dict()
    assert set(exported) <= set(state)
    for name, tensor in exported.items():
        torch.testing.assert_close(state[name], tensor, rtol=0, atol=0)


@pytest.mark.parametrize("strategy", ["frozen", "lora"])
def test_open_eeg_bench_fine_tunes_a_neurodecode_encoder(hub_repo, strategy):
    from open_eeg_bench.experiment import Experiment
    from open_eeg_bench.finetuning import Frozen, LoRA
    from open_eeg_bench.head import LinearHead
    from open_eeg_bench.training import EarlyStopping, Training

    repo_id, exported = hub_repo
    torch.manual_seed(0)
    backbone = _backbone(repo_id)
    model = backbone.build(chs_info=CHS_INFO, **SIGNAL)
    info = {**SIGNAL, "chs_info": CHS_INFO}
    LinearHead().apply(model, 2, backbone.head_module_name)
    Experiment._initialize_lazy_modules(model, info)
    finetuning = Frozen() if strategy == "frozen" else LoRA(r=4, alpha=8)
    wrapped, stats = finetuning.apply(model, backbone)
    assert 0 < stats["trainable_params"] < stats["total_params"]
    training = Training(max_epochs=3, batch_size=16, lr=1e-3,
                        early_stopping=EarlyStopping(patience=10))  # fmt: skip
    learner = training.build_learner(model=wrapped, callbacks=finetuning.get_callbacks(),
                                     n_classes=2, val_set=_windows(16, seed=1), verbose=0)  # fmt: skip
    learner.fit(_windows(), y=None)
    assert len(learner.history) == 3
    assert np.isfinite(learner.history[-1, "train_loss"])
    # the encoder's own weights stay the exported ones (its batch-norm statistics move)
    encoder = {n: p.detach() for n, p in model.named_parameters()
               if "final_layer" not in n and "lora_" not in n}  # fmt: skip
    compared = 0
    for name, tensor in encoder.items():
        key = name.replace(".base_layer", "")
        torch.testing.assert_close(tensor, exported[key], rtol=0, atol=0)
        compared += 1
    assert compared > 10
    assert learner.predict_proba(_windows(8, seed=2)).shape == (8, 2)
