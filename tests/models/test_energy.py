"""Operation counts against networks worked out by hand (real EEG: tests/test_cli.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurodecode.errors import UnknownNameError
from neurodecode.models.blocks import MultiHeadSelfAttention
from neurodecode.models.energy import (
    COST_MODELS,
    CostModel,
    EnergyReport,
    LayerCount,
    calibrate_batchnorm,
    format_energy_table,
    format_precisions,
    format_table,
    is_spikes,
    measure,
    n_parameters,
)
from neurodecode.models.lif import LIFNeuron
from neurodecode.registry import MODELS


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
    assert layer(report, "layers.0").weight_words == 12
    fp32 = report.energy("fp32+sram")
    assert fp32.compute_uj == pytest.approx(12 * 4.6 * 1e-6)
    assert fp32.memory_uj == pytest.approx(19 * 5.0 * 1e-6)  # 5 pJ per 32-bit word


def test_linear_on_spikes_counts_one_accumulate_per_spike_and_output():
    spikes = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    report = measure(Net(nn.Linear(4, 3)), [spikes])
    assert report.macs == 0
    assert report.acs == 3 * 3 / 2  # 3 spikes, fan-out 3, over 2 samples
    assert layer(report, "layers.0").input_rate == pytest.approx(3 / 8)
    assert report.memory_words == (3 + 2 * 12 + 6) / 2  # spikes, weights, outputs
    assert report.energy("fp32").compute_uj == pytest.approx(4.5 * 0.9 * 1e-6)


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
    assert layer(report, "layers.0").state_words == pytest.approx(2 * currents.numel() / 4)
    assert layer(report, "layers.0").memory_words == layer(report, "layers.0").state_words


def test_table_puts_models_side_by_side():
    reports = [
        EnergyReport("a", 1, 1, [LayerCount("x", macs=1e6)]),
        EnergyReport("b", 1, 4, [LayerCount("y", acs=2e6)], {"n": 0.25}),
    ]
    table = format_table(reports)
    assert table.splitlines()[0] == "| | a | b |"
    assert "| MACs / sample (M) | 1.000 | 0.000 |" in table
    assert "| mean firing rate | – | 0.250 |" in table


def known_counts() -> EnergyReport:
    """1 M MACs, 2 M ACs; 1 M activation, 0.5 M weight and 4 M state words, in two layers."""
    return EnergyReport("m", 1, 4, [
        LayerCount("a", macs=1e6, activation_words=0.75e6, weight_words=0.5e6),
        LayerCount("b", acs=2e6, activation_words=0.25e6, state_words=4e6),
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("name", "compute_uj", "memory_uj"),
    [
        ("fp32", 4.6 + 2 * 0.9, 0.0),  # Horowitz 2014: 3.7 + 0.9 pJ per MAC, 0.9 per AC
        ("fp16", 1.5 + 2 * 0.4, 0.0),
        ("int8", 0.23 + 2 * 0.03, 0.0),
        ("fp32+sram", 6.4, 5.5 * 5.0),  # 5.5 M words at 5 pJ per 32-bit word
        ("fp16+sram", 2.3, 5.5 * 2.5),  # 16-bit words
        ("int8+sram", 0.29, 5.5 * 1.25),  # 8-bit words
    ],
)
def test_cost_models_turn_known_counts_into_known_energies(name, compute_uj, memory_uj):
    energy = known_counts().energy(name)
    assert energy.cost_model == name
    assert energy.compute_uj == pytest.approx(compute_uj)
    assert energy.memory_uj == pytest.approx(memory_uj)
    assert energy.to_dict() == {
        "cost_model": name,
        "compute_uj": energy.compute_uj,
        "memory_uj": energy.memory_uj,
        "total_uj": pytest.approx(compute_uj + memory_uj),
    }


def test_lemaire_memory_cost_grows_with_the_buffer_of_each_kind_of_traffic():
    lemaire = COST_MODELS["lemaire"]
    assert lemaire.pj_per_byte(0) == 0
    assert lemaire.pj_per_byte(4 * 1024) == pytest.approx(1.25)  # half-way to 8 kB
    assert lemaire.pj_per_byte(8 * 1024) == pytest.approx(2.5)  # 10 pJ per 4 bytes
    assert lemaire.pj_per_byte(20 * 1024) == pytest.approx(3.75)
    assert lemaire.pj_per_byte(1024**2) == lemaire.pj_per_byte(1024**3) == pytest.approx(25)
    energy = known_counts().energy("lemaire")
    assert energy.compute_uj == pytest.approx(3.2 + 2 * 0.1)  # E_mul 3.1 + E_add 0.1; E_add
    # activations: 1 M words, largest layer 0.75 M words = 3 MB buffer (clamped to 1 MB)
    # weights: 0.5 M words, 2 MB buffer; state: 4 M words, 16 MB buffer; all at 25 pJ/byte
    assert energy.memory_uj == pytest.approx((1 + 0.5 + 4) * 4 * 25)
    small = EnergyReport("s", 1, 1, [LayerCount("a", weight_words=1024)])  # 4 kB of weights
    assert small.energy("lemaire").memory_uj == pytest.approx(4096 * 1.25 * 1e-6)


def test_lower_precision_costs_less_and_memory_adds_to_compute():
    report = known_counts()
    for suffix in ("", "+sram"):
        fp32, fp16, int8 = (report.energy(p + suffix).total_uj for p in ("fp32", "fp16", "int8"))
        assert fp32 > fp16 > int8 > 0
    for precision in ("fp32", "fp16", "int8"):
        compute_only, with_memory = report.energy(precision), report.energy(precision + "+sram")
        assert with_memory.compute_uj == compute_only.total_uj < with_memory.total_uj
    custom = CostModel("custom", 1.0, 0.5, 4)
    assert report.energy(custom).total_uj == pytest.approx(1 + 2 * 0.5)


def test_every_figure_names_its_cost_model():
    report = known_counts()
    rows = report.to_dict()["energy"]
    assert [row["cost_model"] for row in rows] == list(COST_MODELS)
    assert [row["cost_model"] for row in report.to_dict(["int8"])["energy"]] == ["int8"]
    with pytest.raises(UnknownNameError, match="unknown cost model 'fp64'.*fp32"):
        report.energy("fp64")


def test_energy_table_gives_each_cost_model_a_row_and_the_ratio():
    analog = EnergyReport("analog", 1, 1, [LayerCount("x", macs=1e6, activation_words=1e6)])
    spiking = EnergyReport("spiking", 1, 4, [LayerCount("y", acs=1e6, state_words=1e6)])
    lines = format_energy_table([analog, spiking], ["fp32", "fp32+sram"]).splitlines()
    assert lines[0] == "| cost model | analog (µJ) | spiking (µJ) | spiking / analog |"
    assert lines[2] == "| fp32 | 4.60 | 0.90 | 0.20 |"
    assert lines[3] == "| fp32+sram | 4.60 + 5.00 = 9.60 | 0.90 + 5.00 = 5.90 | 0.61 |"
    assert len(lines) == 4


def _spikingjelly_counts(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """MACs and ACs of spikingjelly 2.0's op counters under neurodecode's counting rules.

    The matched rules: BatchNorm folded and neuron updates left out (their modules ignored),
    dense additions and means left out, a sum over spikes adds one AC per spike, and fused
    attention kernels -- which spikingjelly has no rule for -- count Q Kᵀ and weights @ V.
    """
    op_counter = pytest.importorskip(
        "spikingjelly.activation_based.op_counter",
        reason="spikingjelly (the 'spiking' extra) with op_counter is not installed",
    )
    aten = torch.ops.aten

    def nothing(args, kwargs, out):
        return 0

    def spikes_in_sum(args, kwargs, out):
        return int(args[0].count_nonzero()) if args[0].ndim and is_spikes(args[0]) else 0

    def attention(args, kwargs, out):
        q, k, v = args[:3]
        heads = q.numel() // (q.shape[-2] * q.shape[-1])
        return heads * q.shape[-2] * k.shape[-2] * (q.shape[-1] + v.shape[-1])

    dense = ("add.Tensor", "add_.Tensor", "add.Scalar", "add_.Scalar", "sub.Tensor",
             "sub_.Tensor", "sub.Scalar", "sub_.Scalar", "rsub.Tensor", "rsub.Scalar",
             "sigmoid_.default", "mean.dim", "avg_pool2d.default")  # fmt: skip
    ac_rules = {_aten_op(name): nothing for name in dense}
    ac_rules |= {aten.sum.default: spikes_in_sum, aten.sum.dim_IntList: spikes_in_sum}
    attention_ops = (
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
    )
    mac_rules = {
        getattr(aten, name).default: attention for name in attention_ops if hasattr(aten, name)
    }
    ignore = [nn.modules.batchnorm._BatchNorm, LIFNeuron]
    macs = op_counter.MACCounter(extra_rules=mac_rules, extra_ignore_modules=ignore)
    acs = op_counter.ACCounter(extra_rules=ac_rules, extra_ignore_modules=ignore)
    with torch.no_grad(), op_counter.DispatchCounterMode([macs, acs]):
        model(x)
    return macs.get_total(), acs.get_total()


def _aten_op(name: str):
    packet, overload = name.split(".")
    return getattr(getattr(torch.ops.aten, packet), overload)


@pytest.mark.parametrize(
    ("model", "arch"),
    [
        ("dual_branch_conformer", {}),
        ("spiking_dual_branch_conformer", {"time_steps": 4, "encoding": "direct"}),
        ("spiking_dual_branch_conformer", {"time_steps": 2, "encoding": "delta"}),
    ],
)
def test_counts_match_spikingjelly_op_counters_under_the_same_rules(model, arch):
    torch.manual_seed(0)
    net = MODELS.build(model, n_outputs=2, n_chans=8, n_times=256, sfreq=128.0, size="tiny", **arch)
    x = torch.randn(4, 8, 256)
    calibrate_batchnorm(net, [x])
    report = measure(net, [x])
    macs, acs = _spikingjelly_counts(net, x)
    assert report.macs * 4 == macs > 0
    assert report.acs * 4 == acs
    assert (acs > 0) == model.startswith("spiking")


def test_int8_parts_of_a_layer_are_priced_at_int8_and_named():
    mixed = EnergyReport("q", 1, 1, [
        LayerCount("conv", macs=1e6, int8_macs=1e6, activation_words=1e6,
                   int8_activation_words=1e6, weight_words=0.5e6, int8_weight_words=0.5e6),
        LayerCount("attn", macs=2e6, activation_words=1e6),
        LayerCount("norm"),  # no counted operation: no precision
    ])  # fmt: skip
    assert [layer.precision for layer in mixed.layers] == ["int8", "float", ""]
    assert mixed.int8_layers == ["conv"] and mixed.float_layers == ["attn"]
    fp32 = mixed.energy("fp32+sram")
    assert fp32.compute_uj == pytest.approx(0.23 + 2 * 4.6)
    assert fp32.memory_uj == pytest.approx((1.5 * 1 + 1 * 4) * 1.25)  # 1-byte INT8 words
    assert mixed.energy("int8").compute_uj == pytest.approx(3 * 0.23)
    assert mixed.energy("lemaire").compute_uj == pytest.approx(0.23 + 2 * 3.2)
    table = format_precisions(mixed).splitlines()
    assert table[2:] == ["| conv | 1.0000 | 0.0000 | int8 |", "| attn | 2.0000 | 0.0000 | float |"]
    assert mixed.to_dict()["int8_layers"] == ["conv"]
    assert "| of which INT8 (M) | 1.000 |" in format_table([mixed])


def test_a_submodule_called_weight_is_counted_as_parameters_not_called():
    """braindecode's EEGPT has a ModuleDict named ``weight``; only torch.ao's quantized
    layers have ``weight()`` methods with packed weights."""

    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.ModuleDict({"a": nn.Linear(3, 2)})

    assert n_parameters(Holder()) == 3 * 2 + 2
