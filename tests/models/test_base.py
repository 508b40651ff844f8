"""The encoder base class: contract checks, argument capture, head name, legacy weights."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from neurodecode.errors import ContractError
from neurodecode.hub.load import load_state
from neurodecode.models.base import EncoderBase, upgrade_state_dict
from neurodecode.registry import MODELS

CHS = [{"ch_name": name, "loc": [0.01 * i, 0.02, 0.03] + [0.0] * 9}
       for i, name in enumerate(["Fp1", "Fp2", "C3"])]  # fmt: skip


class Mean(EncoderBase):
    """Channel means → linear head (the smallest encoder)."""

    def __init__(self, n_chans, n_outputs, n_times, sfreq, chs_info=None, *, scale=1.0, **extra):
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        self.scale = scale
        self.final_layer = nn.Linear(n_chans, n_outputs)

    def embed(self, x: Tensor, ch_pos=None, ch_mask=None) -> Tensor:
        x, _, _ = self.prepare_input(x, ch_pos, ch_mask)
        return self.scale * x.mean(dim=-1)


class Scaled(Mean):
    def __init__(self, n_chans, n_outputs, n_times, sfreq, *, factor: int = 2):
        super().__init__(n_chans, n_outputs, n_times, sfreq, scale=float(factor))


def test_contract_properties_and_derived_values():
    model = Mean(3, 2, 500, 250, CHS)
    assert (model.n_chans, model.n_outputs, model.n_times, model.sfreq) == (3, 2, 500, 250.0)
    assert model.input_window_seconds == 2.0 and model.ch_names == ["Fp1", "Fp2", "C3"]
    assert model.default_positions.shape == (3, 3)
    assert model.n_features == 3  # measured with a probe window
    assert isinstance(model.final_layer, nn.Module)
    with pytest.raises(ContractError, match="without chs_info"):
        _ = Mean(3, 2, 500, 250).ch_names


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0, 2, 500, 250.0), "n_chans must be a positive number"),
        ((3, 2, 10.5, 250.0), "n_times must be a whole number"),
        ((3, 2, 500, -1.0), "sfreq must be a positive number"),
        ((3, True, 500, 250.0), "n_outputs must be a positive number"),
    ],
)
def test_contract_violations_are_plain_errors(arguments, message):
    with pytest.raises(ContractError, match=message):
        Mean(*arguments)


def test_chs_info_must_list_every_channel():
    with pytest.raises(ContractError, match="chs_info lists 3 channels; n_chans=4"):
        Mean(4, 2, 500, 250.0, CHS)


def test_arguments_are_captured_once_with_defaults_and_extra_keywords():
    model = Mean(3, 2, 500, 250.0, CHS, note="x")
    assert model.config_dict() == {
        "n_chans": 3, "n_outputs": 2, "n_times": 500, "sfreq": 250.0, "chs_info": CHS,
        "scale": 1.0, "note": "x",
    }  # fmt: skip
    # a subclass's call is the one recorded, not its call of the parent constructor
    assert Scaled(3, 2, 500, 250.0, factor=3).config_dict() == {
        "n_chans": 3, "n_outputs": 2, "n_times": 500, "sfreq": 250.0, "factor": 3,
    }  # fmt: skip


def test_constructors_with_positional_varargs_are_refused():
    with pytest.raises(TypeError, match="must have names"):

        class Loose(Mean):  # noqa: F841
            def __init__(self, *args):
                super().__init__(*args)


def test_forward_returns_output_or_features_and_checks_input():
    torch.manual_seed(0)
    model = Mean(3, 2, 500, 250.0)
    x = torch.randn(4, 3, 500)
    assert model(x).shape == (4, 2) and model(x, return_features=True).shape == (4, 3)
    mask = torch.tensor([[True, True, False]] * 4)
    assert torch.all(model(x, ch_mask=mask, return_features=True)[:, 2] == 0)
    with pytest.raises(ContractError, match="built for 3 channels; got 5"):
        model(torch.randn(4, 5, 500))
    with pytest.raises(ContractError, match="NaN or infinite"):
        model(torch.full((1, 3, 500), float("nan")))


def test_weights_saved_with_the_former_head_name_load():
    torch.manual_seed(0)
    source = MODELS.build("dual_branch_conformer", n_chans=3, n_outputs=2, n_times=256,
                          sfreq=128.0, size="tiny")  # fmt: skip
    legacy = {k.replace("final_layer.", "head.", 1): v for k, v in source.state_dict().items()}
    assert "head.layers.1.weight" in legacy
    assert upgrade_state_dict(legacy).keys() == source.state_dict().keys()

    torch.manual_seed(1)
    target = MODELS.build("dual_branch_conformer", n_chans=3, n_outputs=2, n_times=256,
                          sfreq=128.0, size="tiny")  # fmt: skip
    target.load_state_dict(legacy)  # strict, through the load pre-hook
    wrapped = nn.Module()
    wrapped.encoder = target
    wrapped.load_state_dict({f"encoder.{k}": v for k, v in legacy.items()})  # a checkpoint
    assert load_state(target, legacy) == ([], [])  # the Hub loader's own name check
    x = torch.randn(2, 3, 256)
    assert torch.equal(target.eval()(x), source.eval()(x))


def test_every_registered_model_is_an_encoder():
    for name in MODELS.names():
        assert issubclass(MODELS.get(name), EncoderBase), name


def test_the_former_patch_conformer_path_is_an_alias():
    former = "neurodecode.models.pretraining.PatchConformer"
    assert MODELS.get(former) is MODELS.get("patch_conformer") and former in MODELS
    assert former not in MODELS.names()
