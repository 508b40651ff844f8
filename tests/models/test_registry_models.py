"""Every registered model, checked the same way: shapes, gradients, seed, compile, save/load,
and the encoder base's contract (config_dict rebuilds the model, the head is final_layer).

Cases come from ``MODELS.names()`` (plus each default braindecode baseline), so a newly
registered model is tested without writing a test for it.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from safetensors.torch import load_model, save_model

from neurodecode.models.base import EncoderBase
from neurodecode.models.baselines import DEFAULT_BASELINES
from neurodecode.registry import MODELS
from tests.models.foundation_cases import TINY, named_chs

# braindecode's foundation models in tiny versions (REVE: tests/models/test_foundation.py)
CASES = [
    pytest.param(name, TINY.get(name, {}), id=name)
    for name in MODELS.names()
    if name not in ("braindecode", "reve")
] + [
    pytest.param("braindecode", {"name": baseline}, id=f"braindecode-{baseline}")
    for baseline in DEFAULT_BASELINES
]
# (n_chans, n_times, sfreq): SzCORE referential, BCI IV 2a, a three-electrode montage
MONTAGES = [(19, 512, 256.0), (22, 1000, 250.0), (3, 768, 256.0)]
N_OUTPUTS = 3


def build(name: str, extra: dict, n_chans: int = 19, n_times: int = 512, sfreq: float = 256.0):
    if name == "braindecode" and importlib.util.find_spec("braindecode") is None:
        pytest.skip("braindecode is not installed")
    if name in TINY:  # they place channels by name
        extra = {**extra, "chs_info": named_chs(n_chans)}
    return MODELS.build(
        name, n_chans=n_chans, n_outputs=N_OUTPUTS, n_times=n_times, sfreq=sfreq, **extra
    )


def channel_inputs(batch: int, n_chans: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ch_pos = torch.randn(batch, n_chans, 3, generator=generator) * 0.08
    ch_mask = torch.ones(batch, n_chans, dtype=torch.bool)
    ch_mask[0, -1] = False
    return ch_pos, ch_mask


@pytest.mark.parametrize(("n_chans", "n_times", "sfreq"), MONTAGES)
@pytest.mark.parametrize(("name", "extra"), CASES)
def test_output_and_feature_shapes(name, extra, n_chans, n_times, sfreq):
    model = build(name, extra, n_chans, n_times, sfreq).eval()
    x = torch.randn(2, n_chans, n_times)
    ch_pos, ch_mask = channel_inputs(2, n_chans)
    with torch.no_grad():
        out = model(x, ch_pos=ch_pos, ch_mask=ch_mask)
        features = model(x, return_features=True)
    assert out.shape == (2, N_OUTPUTS)
    assert features.shape == (2, model.n_features)
    assert torch.isfinite(out).all() and torch.isfinite(features).all()


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_gradients_reach_every_parameter(name, extra):
    torch.manual_seed(0)
    model = build(name, extra).train()
    ch_pos, ch_mask = channel_inputs(4, 19)
    model(torch.randn(4, 19, 512), ch_pos=ch_pos, ch_mask=ch_mask).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing}"
    broken = [  # parameters a model keeps frozen (CBraMod's) have no gradient
        n for n, p in model.named_parameters() if p.requires_grad and not p.grad.isfinite().all()
    ]
    assert not broken, f"non-finite gradients in {broken}"


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_deterministic_under_seed(name, extra):
    x = torch.randn(2, 19, 512)

    def run(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        model = build(name, extra).train()  # dropout active: the seed must fix it too
        return model(x)

    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_safetensors_round_trip(name, extra, tmp_path):
    torch.manual_seed(0)
    model = build(name, extra).eval()
    x = torch.randn(2, 19, 512)
    expected = model(x)
    save_model(model, str(tmp_path / "model.safetensors"))
    torch.manual_seed(1)
    restored = build(name, extra).eval()
    assert not torch.equal(restored(x), expected)
    missing, unexpected = load_model(restored, str(tmp_path / "model.safetensors"))
    assert not missing and not unexpected
    torch.testing.assert_close(restored(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_config_dict_rebuilds_the_same_model(name, extra):
    model = build(name, extra)
    assert isinstance(model, EncoderBase) and isinstance(model.final_layer, torch.nn.Module)
    config = model.config_dict()
    rebuilt = MODELS.build(name, **config)
    assert rebuilt.config_dict() == config
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }


@pytest.mark.slow
@pytest.mark.parametrize(("name", "extra"), CASES)
def test_compiles_and_matches_eager(name, extra):
    """Dynamo traces the forward pass (``backend="eager"`` skips code generation, which takes
    minutes on 2 CPUs); neurodecode's own models must trace without graph breaks. Full
    inductor (forward): ``test_conformer.py``; the GPU benchmark compiles training steps."""
    torch.manual_seed(0)
    model = build(name, extra).eval()
    x = torch.randn(2, 19, 512)
    compiled = torch.compile(
        model, backend="eager", fullgraph=name != "braindecode" and name not in TINY
    )
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
