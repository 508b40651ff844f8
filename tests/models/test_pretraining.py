"""Masking, the masked-patch loss, mixed montages in one batch, save/load of the encoder."""

from __future__ import annotations

import math

import pytest
import torch

from neurodecode.data.mixture import collate_mixture
from neurodecode.errors import CheckpointError, ConfigError, ContractError
from neurodecode.finetune import initialise, layer_groups, load_encoder, read_init_source
from neurodecode.models.masked_autoencoder import (
    MaskedAutoencoder,
    check_mask_ratio,
    masked_loss,
    sample_mask,
)
from neurodecode.models.patch_conformer import PatchConformer

SFREQ = 64.0


def small_encoder(n_outputs: int = 1, **arch) -> PatchConformer:
    arch = {"patch_s": 0.25, "dim": 16, "depth": 2, "n_heads": 2, "dropout": 0.0, **arch}
    return PatchConformer(4, n_outputs, 128, SFREQ, **arch)


def positions(n_chans: int) -> torch.Tensor:
    angle = torch.linspace(0, math.pi, n_chans)
    return torch.stack([0.08 * torch.cos(angle), 0.08 * torch.sin(angle), 0.05 + 0 * angle], 1)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_mask_ratio_must_lie_strictly_between_0_and_1(ratio):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        check_mask_ratio(ratio)
    with pytest.raises(ConfigError):
        MaskedAutoencoder(small_encoder(), mask_ratio=ratio)


@pytest.mark.parametrize("mode", ["random", "block"])
def test_sample_mask_hides_the_requested_share_of_real_patches_only(mode):
    valid = torch.ones(3, 5, 8, dtype=torch.bool)
    valid[1, 3:] = False  # padded channels
    valid[2, :, 6:] = False  # padding in time
    generator = torch.Generator().manual_seed(0)
    hidden = sample_mask(valid, 0.5, mode=mode, block_len=4, generator=generator)
    assert not (hidden & ~valid).any()
    assert hidden.sum(dim=(1, 2)).tolist() == [
        round(0.5 * n) for n in valid.sum(dim=(1, 2)).tolist()
    ]
    if mode == "block":  # whole runs of 4 patches of one channel where nothing is padded
        assert (hidden[0].reshape(5, 2, 4).float().std(dim=-1) == 0).all()
    # one real token: it is hidden; two: one stays visible
    tiny = torch.zeros(2, 1, 4, dtype=torch.bool)
    tiny[0, 0, 0] = True
    tiny[1, 0, :2] = True
    assert sample_mask(tiny, 0.99, mode=mode, block_len=1).sum(dim=(1, 2)).tolist() == [1, 1]


def test_sample_mask_rejects_unknown_modes():
    with pytest.raises(ConfigError, match="masking mode"):
        sample_mask(torch.ones(1, 2, 4, dtype=torch.bool), 0.5, mode="tube")


def test_loss_counts_hidden_patches_only():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(small_encoder(), mask_ratio=0.5, spectral_weight=0.3).eval()
    x = torch.randn(2, 4, 128)
    out = mae(x, positions(4), generator=torch.Generator().manual_seed(1))
    hidden, valid = out["hidden"], out["valid"]
    assert 0 < hidden.sum() < valid.sum()
    decoded = torch.randn(*hidden.shape, 32)
    patches = mae.encoder.tokenizer.patches(x)
    base = mae.score(decoded, patches, hidden, valid)["loss"]

    visible = (~hidden)[..., None].float()
    changed = mae.score(decoded + 5.0 * visible, patches, hidden, valid)["loss"]
    assert torch.allclose(base, changed)

    one = torch.zeros_like(hidden)
    one[tuple(hidden.nonzero()[0])] = True
    changed = mae.score(decoded + 5.0 * one[..., None].float(), patches, hidden, valid)["loss"]
    assert not torch.allclose(base, changed)


def test_masked_loss_kinds():
    prediction, target = torch.zeros(1, 1, 2, 3), torch.ones(1, 1, 2, 3)
    scored = torch.tensor([[[True, False]]])
    assert masked_loss(prediction, 2 * target, scored, "mse").item() == pytest.approx(4.0)
    assert masked_loss(prediction, 2 * target, scored, "l1").item() == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        masked_loss(prediction, target, scored, "huber")


def test_missing_channels_never_enter_the_loss():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(small_encoder()).eval()
    x = torch.randn(2, 4, 128)
    ch_mask = torch.tensor([[True, True, False, True], [True, True, True, True]])
    out = mae(x, positions(4), ch_mask, generator=torch.Generator().manual_seed(3))
    assert not out["hidden"][0, 2].any()
    garbage = x.clone()
    garbage[0, 2] = torch.nan  # a missing channel may hold anything, even NaN
    again = mae(garbage, positions(4), ch_mask, generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(again["loss"])
    assert torch.allclose(out["loss"], again["loss"])


def test_two_montages_in_one_batch_give_the_same_features_as_alone():
    torch.manual_seed(0)
    model = small_encoder().eval()
    a = {"x": torch.randn(3, 128), "ch_pos": positions(3), "ch_mask": torch.ones(3, dtype=bool)}
    b = {"x": torch.randn(5, 96), "ch_pos": positions(5), "ch_mask": torch.ones(5, dtype=bool)}
    b["ch_mask"][4] = False
    for sample, name in ((a, "a"), (b, "b")):
        sample.update(y=-1, dataset=name, subject="1", session="", recording=name, start_s=0.0)
    batch = collate_mixture([a, b])
    assert batch["x"].shape == (2, 5, 128)
    assert batch["ch_mask"].tolist() == [[True] * 3 + [False] * 2, [True] * 4 + [False]]
    assert torch.isnan(batch["ch_pos"][0, 3:]).all()
    together = model(
        batch["x"], batch["ch_pos"], batch["ch_mask"], True, n_valid_times=batch["n_times"]
    )
    for row, sample in enumerate((a, b)):
        alone = model(sample["x"][None], sample["ch_pos"][None], sample["ch_mask"][None], True)
        assert torch.allclose(together[row], alone[0], atol=1e-5)
    mae = MaskedAutoencoder(model)
    out = mae(batch["x"], batch["ch_pos"], batch["ch_mask"], batch["n_times"])
    assert torch.isfinite(out["loss"])
    assert not out["hidden"][0, 3:].any() and not out["hidden"][1, :, 6:].any()


def test_saved_then_loaded_encoder_gives_identical_outputs(tmp_path):
    from neurodecode.hub import export_model, from_pretrained

    torch.manual_seed(0)
    mae = MaskedAutoencoder(small_encoder())
    mae(torch.randn(2, 4, 128))["loss"].backward()  # weights off their initial values
    with torch.no_grad():
        for parameter in mae.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    encoder = mae.encoder.eval()
    names = ["Fp1", "Fp2", "C3", "C4"]
    export_model(encoder, tmp_path / "encoder", ch_names=names, ch_pos=positions(4).numpy())
    x = torch.randn(3, 4, 128)
    loaded = from_pretrained(tmp_path / "encoder").model
    assert torch.equal(encoder(x, positions(4)), loaded(x, positions(4)))

    # init_from: a new model with another head receives every encoder weight
    task = torch.nn.Module()
    task.encoder, task.lr = small_encoder(n_outputs=3), 1e-3
    report = initialise(task, read_init_source(tmp_path), strategy="full", sfreq=SFREQ)
    assert report.missing and all(k.startswith("final_layer.") for k in report.missing)
    assert not report.unexpected
    features = task.encoder.eval()(x, positions(4), return_features=True)
    assert torch.equal(features, encoder(x, positions(4), return_features=True))


def test_incompatible_encoders_are_refused(tmp_path):
    from neurodecode.hub import export_model
    from neurodecode.models.conformer import DualBranchConformer

    export_model(small_encoder(), tmp_path, ch_names=["Fp1", "Fp2", "C3", "C4"])
    source = read_init_source(tmp_path)
    wider = small_encoder(dim=32)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_encoder(wider, source)
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())
    with pytest.raises(CheckpointError, match="missing"):
        load_encoder(small_encoder(depth=3), source)
    with pytest.raises(CheckpointError, match="incompatible encoder"):
        load_encoder(DualBranchConformer(4, 2, 128, SFREQ), source)
    with pytest.raises(ContractError, match="resample"):
        load_encoder(small_encoder(), source, sfreq=128.0)


def test_frozen_strategy_freezes_the_encoder_and_full_decays_by_layer(tmp_path):
    from neurodecode.hub import export_model

    export_model(small_encoder(), tmp_path, ch_names=["Fp1", "Fp2", "C3", "C4"])
    task = torch.nn.Module()
    task.encoder, task.lr = small_encoder(n_outputs=2), 1.0
    initialise(task, read_init_source(tmp_path), strategy="frozen")
    trainable = {n for n, p in task.encoder.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("final_layer.") for n in trainable)

    fresh = torch.nn.Module()
    fresh.encoder = small_encoder()
    groups = layer_groups(fresh, fresh.encoder, lr=1.0, layer_decay=0.5)
    assert [g["lr"] for g in groups] == [0.125, 0.25, 0.5, 1.0]  # embedding, 2 layers, head
    with pytest.raises(ConfigError):
        initialise(task, read_init_source(tmp_path), strategy="partial")


def test_every_trainable_parameter_gets_a_gradient_for_data_parallel_training():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(small_encoder(), spectral_weight=0.5)
    mae(torch.randn(2, 4, 128), positions(4))["loss"].backward()
    without = [n for n, p in mae.named_parameters() if p.requires_grad and p.grad is None]
    assert not without, f"DDP would fail: no gradient for {without}"
    assert not any(p.requires_grad for p in mae.encoder.final_layer.parameters())


def test_spiking_encoder_option_pretrains_with_lif_layers():
    torch.manual_seed(0)
    encoder = small_encoder(spiking_time_steps=2)
    assert "SpikingTransformerEncoder" in repr(encoder)
    mae = MaskedAutoencoder(encoder)
    ch_mask = torch.tensor([[True, True, True, False]] * 2)
    out = mae(torch.randn(2, 4, 128), positions(4), ch_mask)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert encoder.layers[0].temporal.encoder.input_norm.weight.grad is not None
    with pytest.raises(ConfigError):
        small_encoder(spiking_time_steps=-1)


def test_unpadded_batch_attends_without_mask_and_matches_an_all_true_mask():
    """No ch_mask / n_valid_times: attention runs unmasked (flash path), same result."""
    torch.manual_seed(0)
    encoder = PatchConformer(3, 2, 256, 128.0, dim=16, depth=2, n_heads=2, dropout=0.0).eval()
    x, ch_pos = torch.randn(2, 3, 256), torch.randn(2, 3, 3) * 0.09
    unmasked = encoder(x, ch_pos)
    masked = encoder(x, ch_pos, torch.ones(2, 3, dtype=torch.bool))
    torch.testing.assert_close(unmasked, masked)
