"""DualBranchConformer: size bound, sizes, bad input, channel mask and positions, inductor."""

from __future__ import annotations

import mne
import numpy as np
import pytest
import torch

from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.blocks import ElectrodeTokenizer
from neurodecode.models.conformer import SIZES, DualBranchConformer

EEG_CONFORMER_PARAMETERS = 789_572  # braindecode EEGConformer, 22 ch x 1000 samples x 4 classes


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_22() -> DualBranchConformer:
    torch.manual_seed(0)
    return DualBranchConformer(n_chans=22, n_outputs=4, n_times=1000, sfreq=250.0).eval()


def test_default_has_at_most_an_eighth_of_eeg_conformers_parameters():
    assert n_parameters(model_22()) <= EEG_CONFORMER_PARAMETERS // 8


def test_bound_holds_against_braindecodes_live_count():
    pytest.importorskip("braindecode")
    from neurodecode.registry import MODELS

    baseline = MODELS.build("braindecode", name="EEGConformer", n_chans=22, n_outputs=4,
                            n_times=1000, sfreq=250.0)  # fmt: skip
    assert n_parameters(baseline) == EEG_CONFORMER_PARAMETERS
    assert 8 * n_parameters(model_22()) <= n_parameters(baseline)


def test_sizes_grow_and_overrides_apply():
    counts = [
        n_parameters(DualBranchConformer(22, 4, 1000, 250.0, size=s))
        for s in ("tiny", "small", "base")
    ]
    assert counts == sorted(counts) and len(set(counts)) == 3
    model = DualBranchConformer(22, 4, 1000, 250.0, size="tiny", dim=40, n_heads=5)
    assert model.n_features == 80
    assert model(torch.randn(1, 22, 1000), return_features=True).shape == (1, 80)
    with pytest.raises(ConfigError, match="valid sizes are: tiny, small, base"):
        DualBranchConformer(22, 4, 1000, 250.0, size="huge")


@pytest.mark.parametrize("n_times", [87, 513, 3000])
def test_any_length_from_the_receptive_field_on(n_times):
    model = model_22()
    assert model.min_times == 86  # 25-sample kernel + 62-sample patch - 1 at 250 Hz
    assert model(torch.randn(2, 22, n_times)).shape == (2, 4)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((22, 1000), r"rank-3 tensor; got rank 2 with shape \(22, 1000\).*unsqueeze"),
        ((1, 1, 22, 1000), r"rank-3 tensor; got rank 4"),
        ((2, 19, 1000), r"built for 22 channels; got 19"),
        ((2, 22, 50), r"needs at least 86 samples \(its receptive field\); got 50"),
    ],
)
def test_bad_shapes_say_what_was_expected_and_what_came(shape, expected):
    with pytest.raises(ContractError, match=expected):
        model_22()(torch.randn(shape))


def test_nan_input_is_refused_unless_in_a_masked_channel():
    model = model_22()
    x = torch.randn(2, 22, 1000)
    x[1, 5, 100] = float("nan")
    with pytest.raises(ContractError, match="NaN or infinite values"):
        model(x)
    mask = torch.ones(2, 22, dtype=torch.bool)
    mask[1, 5] = False
    assert torch.isfinite(model(x, ch_mask=mask)).all()


def test_too_short_windows_are_refused_at_construction():
    with pytest.raises(ContractError, match="shorter than the model's receptive field"):
        DualBranchConformer(22, 4, 50, 250.0)


def test_bad_position_and_mask_shapes_are_refused():
    model, x = model_22(), torch.randn(2, 22, 1000)
    with pytest.raises(ContractError, match=r"ch_pos of shape \(2, 22, 3\).*got \(2, 19, 3\)"):
        model(x, ch_pos=torch.zeros(2, 19, 3))
    with pytest.raises(ContractError, match=r"ch_mask of shape \(2, 22\).*got \(22,\)"):
        model(x, ch_mask=torch.ones(22, dtype=torch.bool))


def test_masked_channels_do_not_influence_the_output():
    model = model_22()
    x = torch.randn(2, 22, 1000)
    mask = torch.ones(2, 22, dtype=torch.bool)
    mask[:, [3, 17]] = False
    changed = x.clone()
    changed[:, [3, 17]] = torch.randn(2, 2, 1000) * 100
    with torch.no_grad():
        torch.testing.assert_close(model(x, ch_mask=mask), model(changed, ch_mask=mask))
        assert not torch.allclose(model(x), model(changed))


def test_positions_come_from_ch_pos_or_chs_info():
    names = ["Fz", "C3", "Cz", "C4", "Pz", "Oz"]
    info = mne.create_info(names, 250.0, "eeg")
    info.set_montage("standard_1020")
    positions = torch.tensor(np.array([ch["loc"][:3] for ch in info["chs"]]), dtype=torch.float32)
    torch.manual_seed(0)
    with_info = DualBranchConformer(6, 2, 500, 250.0, chs_info=info["chs"]).eval()
    torch.manual_seed(0)
    plain = DualBranchConformer(6, 2, 500, 250.0).eval()
    x = torch.randn(3, 6, 500)
    with torch.no_grad():
        torch.testing.assert_close(with_info(x), plain(x, ch_pos=positions))
        assert not torch.allclose(plain(x), plain(x, ch_pos=positions))
        # unknown (NaN) positions add nothing
        unknown = torch.full((6, 3), float("nan"))
        torch.testing.assert_close(plain(x), plain(x, ch_pos=unknown))


@pytest.mark.slow
def test_inductor_compiles_without_graph_breaks():
    model = DualBranchConformer(19, 2, 512, 256.0, size="tiny").eval()
    x = torch.randn(2, 19, 512)
    ch_pos = torch.randn(2, 19, 3) * 0.08
    ch_mask = torch.ones(2, 19, dtype=torch.bool)
    ch_mask[0, 4] = False
    compiled = torch.compile(model, fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(
            compiled(x, ch_pos=ch_pos, ch_mask=ch_mask),
            model(x, ch_pos=ch_pos, ch_mask=ch_mask),
            rtol=1e-4,
            atol=1e-5,
        )


def test_config_dict_rebuilds_the_same_architecture_with_sizes_resolved():
    model = DualBranchConformer(4, 3, 256, 128.0, size="tiny", dim=16)
    config = model.config_dict()
    assert config["size"] == "tiny" and config["dim"] == 16
    assert config["n_heads"] == SIZES["tiny"].n_heads  # the preset's value, written out
    rebuilt = DualBranchConformer(**config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


def test_config_dict_holds_a_subclass_s_own_arguments_without_bookkeeping():
    class Wider(DualBranchConformer):
        def __init__(self, n_chans, n_outputs, n_times, sfreq, *, extra: int = 1, **kwargs):
            super().__init__(n_chans, n_outputs, n_times, sfreq, **kwargs)

    config = Wider(4, 2, 256, 128.0, extra=3, size="tiny").config_dict()
    assert config["extra"] == 3 and config["size"] == "tiny"
    assert config["dim"] == SIZES["tiny"].dim  # resolved by the parent class


def test_masked_channels_stay_out_of_the_electrode_norm_statistics():
    torch.manual_seed(0)
    masked, alone, unmasked = (ElectrodeTokenizer(8, 4, 9) for _ in range(3))
    alone.load_state_dict(masked.state_dict())
    unmasked.load_state_dict(masked.state_dict())
    x = torch.randn(3, 5, 200)
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[:, [1, 4]] = False
    x[~mask] = 0.0  # what the conformer feeds for absent channels
    tokens = masked.train()(x, mask)
    reference = alone.train()(x[:, [0, 2, 3]])  # the present channels only
    torch.testing.assert_close(tokens[:, [0, 2, 3]], reference)
    torch.testing.assert_close(masked.norm.running_mean, alone.norm.running_mean)
    torch.testing.assert_close(masked.norm.running_var, alone.norm.running_var)
    # without the mask the zeroed channels pull the statistics far down
    assert not torch.allclose(unmasked.train()(x)[:, 0], tokens[:, 0], atol=1e-2)


def test_masked_electrode_norm_trains_under_bf16_autocast_and_after_sync_batchnorm():
    model = DualBranchConformer(6, 2, 500, 250.0, size="tiny").train()
    x = torch.randn(3, 6, 500)
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[:, 2] = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x, ch_mask=mask).float().sum().backward()
    norm = model.electrode_tokens.norm
    assert norm.running_mean.dtype == torch.float32 and torch.isfinite(norm.running_var).all()
    # trainer=ddp converts batch norms to SyncBatchNorm: the tokenizer still runs
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert synced(x, ch_mask=mask).shape == (3, 2)


def test_masked_electrode_norm_with_one_present_channel_uses_the_running_statistics():
    tokenizer = ElectrodeTokenizer(8, 4, 9).train()
    mask = torch.zeros(3, 6, dtype=torch.bool)
    mask[0, 0] = True
    tokens = tokenizer(torch.randn(3, 6, 200), mask)
    assert torch.isfinite(tokens).all()
    assert int(tokenizer.norm.num_batches_tracked) == 0
    torch.testing.assert_close(tokenizer.norm.running_var, torch.ones(4))
