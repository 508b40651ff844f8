"""Post-training INT8 quantization: outputs close to FP32, INT8 layers counted and priced."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurodecode.cli.benchmark import main as benchmark_main
from neurodecode.errors import ContractError
from neurodecode.models.energy import COST_MODELS, measure
from neurodecode.models.quantize import agreement, int8_layers, quantize_int8
from neurodecode.registry import MODELS
from tests.conftest import require_shared
from tests.models.test_energy import Net

pytestmark = pytest.mark.usefixtures("one_thread")


def windows(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """8-channel 2-s windows at 64 Hz; class 1 carries a 10 Hz rhythm on channels 0-3."""
    y = torch.randint(0, 2, (n,), generator=generator)
    x = torch.randn(n, 8, 128, generator=generator)
    t = torch.arange(128) / 64.0
    x[:, :4] += 1.5 * y[:, None, None] * torch.sin(2 * torch.pi * 10 * t)
    return x, y


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A tiny dual-branch conformer trained on the synthetic task; calibration and test sets."""
    generator = torch.Generator().manual_seed(0)
    x_train, y_train = windows(48, generator)
    x_test, y_test = windows(48, generator)
    torch.manual_seed(0)
    model = MODELS.build("dual_branch_conformer", n_chans=8, n_outputs=2, n_times=128,
                         sfreq=64.0, size="tiny", dropout=0.0)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(20):
        loss = F.cross_entropy(model(x_train), y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, x_train, x_test, y_test


def test_int8_copy_predicts_like_the_fp32_model(trained):
    model, x_train, x_test, y_test = trained
    int8 = quantize_int8(model, x_train.split(16))
    with torch.no_grad():
        fp32_logits, int8_logits = model(x_test), int8(x_test)
    fp32_accuracy = float((fp32_logits.argmax(1) == y_test).float().mean())
    int8_accuracy = float((int8_logits.argmax(1) == y_test).float().mean())
    assert fp32_accuracy > 0.9  # the model learned the task, so its margins are real
    assert agreement(model, int8, x_test.split(16)) >= 0.95
    assert int8_accuracy >= fp32_accuracy - 0.05
    assert torch.allclose(int8_logits, fp32_logits, atol=0.1 * fp32_logits.abs().max().item())
    assert not torch.equal(int8_logits, fp32_logits)  # really another computation
    # the trained model itself is untouched: still FP32 layers, no INT8 layer
    assert int8_layers(model) == [] and isinstance(model.final_layer, nn.Module)


def test_every_convolution_and_linear_layer_runs_in_int8_and_is_reported(trained):
    model, x_train, x_test, _ = trained
    positions = torch.randn(8, 3) * 0.1  # batch dicts with positions: every layer runs

    def batches(x):
        return [{"x": part, "ch_pos": positions.expand(len(part), 8, 3)} for part in x.split(16)]

    int8 = quantize_int8(model, batches(x_train))
    convolutions = [n for n, m in model.named_modules() if isinstance(m, nn.Conv1d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert sorted(int8_layers(int8)) == sorted([f"{n}.module" for n in convolutions] + linears)
    fp32_report = measure(model, batches(x_test))
    int8_report = measure(int8, batches(x_test), "int8")
    assert sorted(int8_report.int8_layers) == sorted(int8_layers(int8))
    assert fp32_report.int8_layers == []
    # attention products and the pooling sum stay in float, around the INT8 projections
    floats = int8_report.float_layers
    assert floats and all(name.endswith(("attn", "channel_pool")) for name in floats)
    # the same operations and words, only their precision differs
    assert int8_report.macs == pytest.approx(fp32_report.macs)
    assert int8_report.memory_words == pytest.approx(fp32_report.memory_words)
    assert int8_report.n_parameters == fp32_report.n_parameters
    int8_share = sum(layer.int8_macs for layer in int8_report.layers) / int8_report.macs
    assert 0.5 < int8_share < 1
    rows = int8_report.to_dict()["layers"]
    assert {row["name"]: row["precision"] for row in rows if row["precision"] == "int8"}


def test_int8_model_costs_less_under_every_cost_model_that_is_not_already_int8(trained):
    model, x_train, x_test, _ = trained
    fp32 = measure(model, x_test.split(16))
    int8 = measure(quantize_int8(model, x_train.split(16)), x_test.split(16))
    for name in COST_MODELS:
        fp32_uj, int8_uj = fp32.energy(name).total_uj, int8.energy(name).total_uj
        if name.startswith("int8"):  # every operation is already priced at INT8
            assert int8_uj == pytest.approx(fp32_uj), name
        else:
            assert int8_uj < 0.8 * fp32_uj, name


def test_int8_counts_and_energies_of_single_layers_worked_out_by_hand():
    torch.manual_seed(0)
    linear = quantize_int8(Net(nn.Linear(4, 3)), [torch.randn(8, 4)])
    report = measure(linear, [torch.randn(2, 4)])
    layer = report.layers[0]
    assert (layer.name, layer.precision) == ("layers.0", "int8")
    assert layer.macs == layer.int8_macs == 12 and layer.int8_weight_words == 12
    assert layer.activation_words == 4 + 3 and layer.int8_activation_words == 0  # FP32 in/out
    # 12 INT8 MACs at 0.23 pJ; 7 FP32 activation words (4 bytes) and 12 one-byte weights
    energy = report.energy("fp32+sram")
    assert energy.compute_uj == pytest.approx(12 * 0.23e-6)
    assert energy.memory_uj == pytest.approx((7 * 4 + 12) * 1.25e-6)
    assert report.energy("lemaire").compute_uj == pytest.approx(12 * 0.23e-6)
    conv = quantize_int8(Net(nn.Conv1d(2, 3, 3, bias=False)), [torch.randn(4, 2, 10)])
    layer = measure(conv, [torch.randn(1, 2, 10)]).layers[0]
    assert layer.name == "layers.0.module" and layer.precision == "int8"
    assert layer.int8_macs == 3 * 8 * (2 * 3)  # outputs x fan-in
    assert layer.int8_activation_words == 2 * 10 + 3 * 8  # UINT8 in and out
    assert layer.int8_weight_words == 3 * 2 * 3


def test_quantization_refuses_what_it_cannot_do():
    with pytest.raises(ContractError, match="no convolution or linear layer"):
        quantize_int8(Net(nn.ReLU()), [torch.randn(2, 4)])
    with pytest.raises(ContractError, match="at least one calibration batch"):
        quantize_int8(Net(nn.Linear(4, 2)), [])
    spiking = MODELS.build("spiking_dual_branch_conformer", n_chans=2, n_outputs=2,
                           n_times=64, sfreq=64.0, size="tiny")  # fmt: skip
    with pytest.raises(ContractError, match="has spiking neurons.*for analog models"):
        quantize_int8(spiking, [torch.randn(2, 2, 64)])


@pytest.mark.slow
def test_energy_benchmark_adds_the_int8_model_on_real_eeg(tmp_path, capsys):
    path = require_shared("mirror/eegmmidb/S001/S001R04.edf")
    out = tmp_path / "energy.json"
    status = benchmark_main(["energy", f"data={path}", "model=spiking", "size=tiny",
                             "n_windows=8", "batch_size=4", "window_s=2", "quantize=int8",
                             f"out={out}"])  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "| | dual_branch_conformer | dual_branch_conformer int8 | spiking_dual" in printed
    assert "Precision per layer, dual_branch_conformer int8" in printed
    assert "INT8 predicts the FP32 model's class on" in printed
    result = json.loads(out.read_text())
    fp32, int8, spiking = result["reports"]
    assert 0.5 <= result["int8_agreement"] <= 1
    assert int8["int8_layers"] and not fp32["int8_layers"] and not spiking["int8_layers"]
    assert int8["macs"] == pytest.approx(fp32["macs"])
    for name in ("fp32", "fp16", "fp32+sram", "lemaire"):
        energy = {r["model"]: row["total_uj"] for r in result["reports"]
                  for row in r["energy"] if row["cost_model"] == name}  # fmt: skip
        assert energy["dual_branch_conformer int8"] < energy["dual_branch_conformer"], name
