"""LIF neurons, encodings, spike-driven attention and the spiking dual-branch conformer."""

from __future__ import annotations

import math

import pytest
import torch

from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.lif import (
    LIFNeuron,
    delta_encoding,
    record_firing_rates,
    repeat_encoding,
    spike,
)
from neurodecode.models.spiking import SpikeDrivenSelfAttention, SpikingDualBranchConformer
from neurodecode.registry import MODELS


def test_lif_integrates_leaks_fires_and_resets_by_hand():
    # tau=2, decay_input: h = v + (x - v) / 2; threshold 1
    x = torch.tensor([1.5, 1.5, 1.5, 0.0, 2.2])[:, None]
    hard = LIFNeuron(tau=2.0)(x).squeeze(1)
    # h: 0.75 → 1.125 (fire, v=0) → 0.75 → 0.375 → 1.2875 (fire)
    assert hard.tolist() == [0, 1, 0, 0, 1]
    soft = LIFNeuron(tau=2.0, reset="soft")(x).squeeze(1)
    # h: 0.75 → 1.125 (fire, v=0.125) → 0.8125 → 0.40625 → 1.303 (fire)
    assert soft.tolist() == [0, 1, 0, 0, 1]
    no_decay_input = LIFNeuron(tau=2.0, decay_input=False)(x).squeeze(1)
    # h = v / 2 + x: 1.5 fire → 1.5 fire → 1.5 fire → 0 → 2.2 fire
    assert no_decay_input.tolist() == [1, 1, 1, 0, 1]
    low = LIFNeuron(tau=4.0, v_threshold=2.0)(torch.full((6, 1), 1.0))
    assert low.sum() == 0  # v approaches 1 < threshold 2


@pytest.mark.parametrize("surrogate", ["sigmoid", "arctan"])
def test_surrogate_gradient_peaks_at_threshold_and_integrates_to_one(surrogate):
    x = torch.linspace(-20, 20, 40001, requires_grad=True)
    spike(x, 2.0, surrogate).sum().backward()
    grad = x.grad
    assert grad.argmax() == 20000  # x == 0
    assert torch.trapezoid(grad, x.detach()).item() == pytest.approx(1.0, abs=0.02)
    assert spike(torch.tensor([-0.1, 0.0, 0.3]), 2.0, surrogate).tolist() == [0, 1, 1]


def test_learnable_decay_starts_at_one_over_tau_and_learns():
    neuron = LIFNeuron(tau=3.0, learnable_decay=True)
    assert float(neuron.decay().detach()) == pytest.approx(1 / 3)
    neuron(torch.rand(4, 2, 8) * 3).sum().backward()
    assert neuron.decay_logit.grad is not None and neuron.decay_logit.grad != 0


def test_bad_neuron_options_are_refused():
    with pytest.raises(ValueError, match="tau must be > 1"):
        LIFNeuron(tau=1.0)
    with pytest.raises(ValueError, match="reset must be"):
        LIFNeuron(reset="none")
    with pytest.raises(ValueError, match="surrogate must be one of"):
        LIFNeuron(surrogate="relu")


def test_firing_rates_are_recorded_per_layer_also_when_compiled():
    torch.manual_seed(0)
    model = torch.nn.Sequential(LIFNeuron(), torch.nn.Linear(6, 6), LIFNeuron(v_threshold=9.0))
    currents = torch.rand(4, 3, 6) * 3
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with record_firing_rates(compiled) as rates:
        first = model[0](currents)
        compiled(currents)
        compiled(currents)
    assert rates["0"] == pytest.approx(float(first.mean()))
    assert rates["2"] == 0.0
    assert not model[0].recording  # switched off again
    with record_firing_rates(model) as rates:
        pass
    assert math.isnan(rates["0"])


def test_encodings():
    x = torch.randn(2, 3, 50)
    repeated = repeat_encoding(x, 4)
    assert repeated.shape == (4, 2, 3, 50) and torch.equal(repeated[3], x)
    ramp = torch.linspace(0, 1, 11).expand(1, 2, 11)
    spikes = delta_encoding(ramp, threshold=0.1)
    assert spikes.shape == (1, 4, 11)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert spikes[0, :2].sum() > 0 and spikes[0, 2:].sum() == 0  # rising: "up" spikes only
    assert delta_encoding(-ramp, threshold=0.1)[0, :2].sum() == 0


def test_spike_driven_attention_is_linear_in_tokens_and_respects_the_key_mask():
    torch.manual_seed(0)
    attention = SpikeDrivenSelfAttention(8, dict(tau=2.0)).eval()
    spikes = (torch.rand(4, 2, 10, 8) < 0.5).float()
    mask = torch.ones(2, 10, dtype=torch.bool)
    mask[:, 7:] = False
    changed = spikes.clone()
    changed[:, :, 7:] = 1 - changed[:, :, 7:]
    with torch.no_grad():
        out = attention(spikes, mask)
        assert out.shape == spikes.shape
        # masked tokens change only their own outputs, not the others'
        torch.testing.assert_close(out[:, :, :7], attention(changed, mask)[:, :, :7])


def test_model_is_registered_with_the_analog_contract():
    model = MODELS.build("spiking_dual_branch_conformer", n_chans=22, n_outputs=4,
                         n_times=1000, sfreq=250.0, size="tiny", time_steps=2)  # fmt: skip
    assert isinstance(model, SpikingDualBranchConformer)
    x = torch.randn(3, 22, 1000)
    assert model(x).shape == (3, 4)
    assert model(x, return_features=True).shape == (3, model.n_features)
    with pytest.raises(ContractError, match="built for 22 channels; got 19"):
        model(torch.randn(3, 19, 1000))
    with pytest.raises(ConfigError, match="unknown encoding"):
        SpikingDualBranchConformer(22, 4, 1000, 250.0, encoding="rate")


@pytest.mark.parametrize("encoding", ["direct", "delta"])
def test_encodings_train_and_every_neuron_layer_reports_a_rate(encoding):
    torch.manual_seed(0)
    model = SpikingDualBranchConformer(8, 2, 256, 128.0, size="tiny", encoding=encoding,
                                       learnable_decay=True, surrogate="arctan", alpha=2.0)  # fmt: skip
    x = torch.randn(4, 8, 256)
    with record_firing_rates(model) as rates:
        model(x).logsumexp(-1).mean().backward()
    neurons = [n for n, m in model.named_modules() if isinstance(m, LIFNeuron)]
    assert sorted(rates) == sorted(neurons) and len(neurons) == 16
    assert all(0.0 <= r <= 1.0 for r in rates.values()) and max(rates.values()) > 0.01
    grads = [p.grad for p in model.temporal_encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.slow
def test_model_compiles_without_graph_breaks_forward_and_backward():
    torch.manual_seed(0)
    model = SpikingDualBranchConformer(19, 2, 512, 256.0, size="tiny").train()
    x = torch.randn(2, 19, 512)
    ch_mask = torch.ones(2, 19, dtype=torch.bool)
    ch_mask[0, 4] = False
    explanation = torch._dynamo.explain(model)(x, ch_mask=ch_mask)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    model.eval()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with record_firing_rates(compiled) as rates:
        out = compiled(x, ch_mask=ch_mask)
    torch.testing.assert_close(out, model(x, ch_mask=ch_mask), rtol=1e-4, atol=1e-5)
    assert len(rates) == 16 and not any(math.isnan(r) for r in rates.values())


@pytest.mark.slow
def test_lif_compiles_with_inductor_and_matches_eager():
    neuron = LIFNeuron(learnable_decay=True, surrogate="arctan")
    compiled = torch.compile(neuron, fullgraph=True)
    x = torch.randn(4, 3, 16) * 2
    eager_x, compiled_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    with record_firing_rates(compiled) as rates:
        out = compiled(compiled_x)
    out.sum().backward()
    expected = neuron(eager_x)
    expected.sum().backward()
    assert torch.equal(out, expected) and rates[""] == pytest.approx(float(expected.mean()))
    torch.testing.assert_close(compiled_x.grad, eager_x.grad)
