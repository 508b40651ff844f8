"""LIF neurons, encodings, spike-driven attention and the spiking dual-branch conformer."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
import yaml

from neurodecode.data.io import read_recording
from neurodecode.data.montage import average_reference, canonical_name
from neurodecode.data.preprocess import bandpass_notch, resample
from neurodecode.data.windows import event_windows, extract_windows
from neurodecode.errors import ConfigError, ContractError
from neurodecode.evaluation.classification import above_chance, chance_level
from neurodecode.models.lif import (
    LIFNeuron,
    delta_encoding,
    record_firing_rates,
    repeat_encoding,
    spike,
)
from neurodecode.models.spiking import SpikeDrivenSelfAttention, SpikingDualBranchConformer
from neurodecode.registry import MODELS
from tests.conftest import REPO_ROOT, require_shared


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
    # v_init=0.5 starts half-way to the threshold: h = 0.5 + (1.5 - 0.5) / 2 = 1.0 fires
    primed = LIFNeuron(tau=2.0, v_init=0.5)(x).squeeze(1)
    assert primed.tolist() == [1, 0, 1, 0, 1]  # 1.0 fire → 0.75 → 1.125 fire → 0 → 1.1 fire
    # soft reset rests at 0; v_init=0.25 of threshold 2 is 0.5: h = 0.5 + (3.5 - 0.5) / 2 = 2
    one_step = torch.tensor([[3.5]])
    assert LIFNeuron(tau=2.0, v_threshold=2.0, reset="soft")(one_step).tolist() == [[0.0]]
    primed_soft = LIFNeuron(tau=2.0, v_threshold=2.0, reset="soft", v_init=0.25)
    assert primed_soft(one_step).tolist() == [[1.0]]


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
    with pytest.raises(ValueError, match=r"v_init must be in \[0, 1\)"):
        LIFNeuron(v_init=1.0)


@pytest.mark.slow
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
    primed = SpikingDualBranchConformer(22, 4, 1000, 250.0, size="tiny", v_init=0.25)
    neurons = [m for m in primed.modules() if isinstance(m, LIFNeuron)]
    assert neurons and all(neuron.v_init == 0.25 for neuron in neurons)


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
def test_model_traces_without_graph_breaks():
    """Dynamo sees one graph; compiling and matching eager is in test_registry_models.py."""
    torch.manual_seed(0)
    model = SpikingDualBranchConformer(19, 2, 512, 256.0, size="tiny").train()
    x = torch.randn(2, 19, 512)
    ch_mask = torch.ones(2, 19, dtype=torch.bool)
    ch_mask[0, 4] = False
    with record_firing_rates(model):
        explanation = torch._dynamo.explain(model)(x, ch_mask=ch_mask)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


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


# ------------------------------------------------------------------ training on real EEG

# Sensorimotor channels (FC, C and CP rows) of the 64-channel eegmmidb montage.
MOTOR_CHANNELS = ["FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz",
                  "C2", "C4", "C6", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6"]  # fmt: skip
IMAGERY_RUNS = ("04", "08", "12")  # imagined left vs right fist
IMAGERY_LABELS = {"imagined_left_fist": 0, "imagined_right_fist": 1}


def imagery_trials(root, run: str, sfreq: float = 80.0) -> tuple[np.ndarray, np.ndarray]:
    """Cue-locked 0–4 s trials of one eegmmidb run: 8–30 Hz, average reference, motor rows."""
    recording = read_recording(root / f"S001R{run}.edf")
    recording = average_reference(resample(bandpass_notch(recording, 8.0, 30.0, []), sfreq))
    names = [canonical_name(name) for name in recording.ch_names]
    rows = [names.index(name) for name in MOTOR_CHANNELS]
    windows, _ = event_windows(
        recording.annotations, sfreq, recording.n_times, IMAGERY_LABELS, 0.0, 4.0
    )
    x = extract_windows(recording.signal[rows], windows["start_sample"].to_numpy(), int(4 * sfreq))
    return x, windows["label"].to_numpy()


def train_and_predict(x_train, y_train, x_val, sfreq: float, seed: int = 0) -> torch.Tensor:
    """Fit a tiny spiking model on random 2-s crops of the training trials; predict ``x_val``."""
    scale = x_train.std(axis=(0, 2), keepdims=True)  # per channel, from training data only
    x_train = torch.as_tensor(x_train / scale, dtype=torch.float32)
    y_train = torch.as_tensor(y_train)
    crop = int(2 * sfreq)
    torch.manual_seed(seed)
    model = SpikingDualBranchConformer(
        x_train.shape[1], 2, crop, sfreq, size="tiny", time_steps=4, dropout=0.5
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(100):  # full-batch steps, one random crop each
        start = int(torch.randint(0, x_train.shape[-1] - crop + 1, (1,), generator=generator))
        logits = model(x_train[..., start : start + crop])
        loss = torch.nn.functional.cross_entropy(logits, y_train)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():  # whole 4-s trials: the model takes any length
        return model(torch.as_tensor(x_val / scale, dtype=torch.float32)).argmax(dim=1)


@pytest.mark.slow
def test_spiking_model_decodes_imagined_left_vs_right_fist_in_held_out_runs():
    """Leave-one-run-out over eegmmidb S001's three imagery runs (15 trials each).

    Each fold trains a fresh model on two runs and predicts every trial of the third, so no
    trial, and no run, is in both training and validation. The 45 held-out predictions are
    tested against chance with an exact one-sided binomial test: the 95 % lower confidence
    bound on accuracy must exceed the majority-class rate (chance is 23/45 here).
    """
    root = require_shared("mirror/eegmmidb/S001")
    trials = {run: imagery_trials(root, run) for run in IMAGERY_RUNS}
    y_true, y_pred = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add contention on a busy machine
    try:
        for held_out in IMAGERY_RUNS:
            train = [trials[run] for run in IMAGERY_RUNS if run != held_out]
            x_train = np.concatenate([x for x, _ in train])
            y_train = np.concatenate([y for _, y in train])
            x_val, y_val = trials[held_out]
            y_pred.append(train_and_predict(x_train, y_train, x_val, 80.0).numpy())
            y_true.append(y_val)
    finally:
        torch.set_num_threads(threads)
    y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
    assert y_true.size == 45
    result = above_chance(int((y_true == y_pred).sum()), y_true.size, chance_level(y_true, 2))
    assert result["above_chance"], result


def test_recipe_defaults_are_the_setting_the_validation_sweep_chose(monkeypatch):
    """configs/model/spiking.yaml holds benchmarks/spiking_defaults.py's chosen setting, and
    every setting of the sweep builds a model (docs/benchmarks.md has the figures)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "benchmarks"))
    sweep = importlib.import_module("spiking_defaults")
    config = yaml.safe_load((REPO_ROOT / "configs/model/spiking.yaml").read_text())
    model_name, chosen = sweep.SETTINGS[sweep.CHOSEN]
    assert config["_target_"] == model_name
    assert {key: config[key] for key in chosen} == chosen
    for model_name, options in sweep.SETTINGS.values():
        MODELS.build(model_name, n_chans=21, n_outputs=2, n_times=160, sfreq=80.0,
                     size="tiny", **options)  # fmt: skip
