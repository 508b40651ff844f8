"""Operation counts against networks worked out by hand (real EEG: tests/test_cli.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurodecode.models.blocks import MultiHeadSelfAttention
from neurodecode.models.energy import (
    E_AC_PJ,
    E_MAC_PJ,
    E_MEM_PJ_PER_WORD,
    EnergyReport,
    LayerCount,
    format_table,
    measure,
)
from neurodecode.models.lif import LIFNeuron


class Net(nn.Module):
    """Wraps layers so that ``measure`` can call ``model(x)``."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def layer(report: EnergyReport, name: str) -> LayerCount:
    return next(item for item in report.layers if item.name == name)


def test_analog_linear_is_in_features_times_out_features_macs():
    report = measure(Net(nn.Linear(4, 3)), [torch.randn(2, 4)])
    assert report.n_samples == 2
    assert report.macs == 12 and report.acs == 0
    # per sample: 4 inputs read + 12 weights read + 3 outputs written
    assert report.memory_words == 4 + 12 + 3
    assert report.compute_energy_uj == pytest.approx(12 * E_MAC_PJ * 1e-6)
    assert report.energy_uj == pytest.approx((12 * E_MAC_PJ + 19 * E_MEM_PJ_PER_WORD) * 1e-6)


def test_linear_on_spikes_counts_one_accumulate_per_spike_and_output():
    spikes = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    report = measure(Net(nn.Linear(4, 3)), [spikes])
    assert report.macs == 0
    assert report.acs == 3 * 3 / 2  # 3 spikes, fan-out 3, over 2 samples
    assert layer(report, "layers.0").input_rate == pytest.approx(3 / 8)
    assert report.memory_words == (3 + 2 * 12 + 6) / 2  # spikes, weights, outputs
    assert report.compute_energy_uj == pytest.approx(4.5 * E_AC_PJ * 1e-6)


def test_convolution_on_spikes_counts_spikes_in_each_receptive_field():
    conv = nn.Conv1d(2, 3, kernel_size=3, padding=1)
    spikes = torch.zeros(1, 2, 5)
    spikes[0, 0, 0] = 1  # seen by outputs 0, 1 (padding on the left)
    spikes[0, 1, 2] = 1  # seen by outputs 1, 2, 3
    assert measure(Net(conv), [spikes]).acs == (2 + 3) * 3
    analog = measure(Net(conv), [torch.randn(1, 2, 5)])
    assert analog.macs == 3 * 5 * (2 * 3) and analog.acs == 0


def test_grouped_convolution_and_attention_products():
    depthwise = nn.Conv1d(4, 4, kernel_size=5, groups=4, bias=False)
    assert measure(Net(depthwise), [torch.randn(1, 4, 20)]).macs == 4 * 16 * 5
    projections = 6 * 8 * 3 * 8 + 6 * 8 * 8  # q, k, v and output projections of 6 tokens
    products = 2 * 6 * 6 * 8  # Q K^T and weights @ V, summed over 2 heads of 4
    fused = measure(Net(MultiHeadSelfAttention(8, 2)), [torch.randn(1, 6, 8)])
    assert fused.macs == projections + products

    class TorchAttention(nn.Module):  # nn.MultiheadAttention takes a fused inference path
        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            return self.attention(x, x, x, need_weights=False)[0]

    assert measure(TorchAttention(), [torch.randn(1, 6, 8)]).macs == projections + products


def test_neuron_dynamics_are_not_counted_but_their_state_traffic_is():
    torch.manual_seed(0)
    net = Net(LIFNeuron(), nn.Linear(5, 2, bias=False))
    currents = torch.rand(4, 3, 5) * 3  # T=4 steps, batch 3
    with torch.no_grad():
        spikes = net.layers[0](currents)
    report = measure(net, [currents])
    n_spikes = float(spikes.sum())
    assert 0 < n_spikes < spikes.numel()
    assert report.macs == 0
    assert report.acs == pytest.approx(n_spikes * 2 / 4)  # "batch" 4 = time steps here
    assert report.firing_rates["layers.0"] == pytest.approx(n_spikes / spikes.numel())
    assert layer(report, "layers.0").memory_words == pytest.approx(2 * currents.numel() / 4)


def test_table_puts_models_side_by_side():
    reports = [
        EnergyReport("a", 1, 1, [LayerCount("x", macs=1e6)]),
        EnergyReport("b", 1, 4, [LayerCount("y", acs=2e6)], {"n": 0.25}),
    ]
    table = format_table(reports)
    assert table.splitlines()[0] == "| | a | b |"
    assert "| MACs / sample (M) | 1.000 | 0.000 |" in table
    assert "| mean firing rate | – | 0.250 |" in table
