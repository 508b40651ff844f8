"""Classical models (CSP + LDA, tangent space + LR, EEG features): registered apart from the
deep encoders, fitted in closed form, tested through ``forward`` like an encoder, and refused
where the method cannot work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.classical import ClassicalModel, window_features
from neurodecode.registry import CLASSICAL_MODELS, MODELS, instantiate

N_CHANS, N_TIMES, SFREQ = 4, 256, 128.0


def windows(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes that differ in the power of a 10 Hz rhythm on channel 0 only."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, N_CHANS, N_TIMES))
    t = np.arange(N_TIMES) / SFREQ
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    x[:, 0] += (1 + 2 * y[:, None]) * np.sin(2 * np.pi * 10 * t + phase)
    return x, y


def build(name: str, n_chans: int = N_CHANS, **params) -> ClassicalModel:
    return instantiate(
        {"_target_": name, **params}, n_chans=n_chans, n_outputs=2, n_times=N_TIMES, sfreq=SFREQ
    )


def test_classical_models_are_registered_apart_from_the_deep_encoders():
    """MODELS promise gradients, an embedding and a Hub export (tests/models/
    test_registry_models.py checks every one); closed-form models promise none of that."""
    assert CLASSICAL_MODELS.names() == ["csp_lda", "eeg_features", "tangent_space"]
    assert not set(CLASSICAL_MODELS.names()) & set(MODELS.names())


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("csp_lda", {}),
        ("tangent_space", {}),
        ("eeg_features", {}),
        ("eeg_features", {"classifier": "gboost"}),
    ],  # fmt: skip
)
def test_fitted_on_training_windows_each_beats_chance_on_held_out_ones(name, params):
    x, y = windows()
    model = build(name, **params).fit(x[:80], y[:80])
    log_p = model(torch.as_tensor(x[80:], dtype=torch.float32))
    assert log_p.shape == (40, 2) and log_p.dtype == torch.float32
    assert torch.allclose(log_p.exp().sum(dim=1), torch.ones(40), atol=1e-5)
    accuracy = (log_p.argmax(dim=1).numpy() == y[80:]).mean()
    assert accuracy >= 0.8, accuracy
    assert model.closed_form and not list(model.parameters())


def test_an_unfitted_model_and_a_request_for_features_are_refused():
    model = build("csp_lda")
    x = torch.zeros(2, N_CHANS, N_TIMES)
    with pytest.raises(ContractError, match="before it was fitted"):
        model(x)
    model.fit(*windows(40))
    with pytest.raises(ContractError, match="without an embedding"):
        model(x, return_features=True)
    with pytest.raises(ContractError, match=r"expects windows \(n, 4, 256\), got \(2, 3, 256\)"):
        model(torch.zeros(2, 3, N_TIMES))


def test_training_windows_of_one_class_are_refused():
    x, y = windows(20)
    with pytest.raises(ContractError, match=r"at least two classes.*classes \[0\]"):
        build("eeg_features").fit(x, np.zeros_like(y))


def test_csp_on_one_channel_is_refused_with_the_count():
    with pytest.raises(ConfigError, match="at least 2 channels.*the data have 1"):
        build("csp_lda", n_chans=1)
    with pytest.raises(ConfigError, match="n_components=5 must lie between 1 and the 4"):
        build("csp_lda", n_components=5)


def test_tangent_space_refuses_rank_deficient_covariances_with_the_rank():
    x, y = windows()
    x = x - x.mean(axis=1, keepdims=True)  # common average reference: rank n_chans - 1
    with pytest.raises(ContractError, match=r"120 of 120 training windows have covariance "
                                            r"rank 3 < 4 channels"):  # fmt: skip
        build("tangent_space", estimator="scm").fit(x, y)
    build("tangent_space", estimator="oas").fit(x, y)  # shrinkage makes them full rank


def test_an_unknown_feature_classifier_is_refused_with_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean 'gboost'"):
        build("eeg_features", classifier="gbost")


def test_window_features_of_a_sine_are_what_they_measure():
    t = np.arange(N_TIMES) / SFREQ
    x = np.sin(2 * np.pi * 10 * t)[None, None, :]  # one window, one channel, 10 Hz
    bands = ((1.0, 4.0), (8.0, 13.0), (80.0, 90.0))  # the last is above Nyquist: left out
    (features,) = window_features(x, SFREQ, bands=bands, edge=0.9)
    line_length, log_var, delta, alpha, edge, crossings = features
    assert np.exp(log_var) == pytest.approx(0.5, rel=0.02)
    assert np.exp(line_length) == pytest.approx(4 * 10 / SFREQ, rel=0.05)  # 4 A f / fs
    assert alpha > delta + 5  # the power is in the alpha band
    assert edge == pytest.approx(10.0, abs=1.0)
    assert crossings == pytest.approx(2 * 10 / SFREQ, rel=0.05)


@pytest.mark.parametrize("name", ["csp_lda", "tangent_space", "eeg_features"])
def test_signal_contract_is_checked_like_the_encoders(name):
    """A non-positive size or rate is refused with the encoders' own message."""
    cls = CLASSICAL_MODELS.get(name)
    with pytest.raises(ContractError, match="n_chans must be a positive number"):
        cls(n_chans=0, n_outputs=2, n_times=100, sfreq=100.0)
    with pytest.raises(ContractError, match="n_times must be a whole number"):
        cls(n_chans=4, n_outputs=2, n_times=10.5, sfreq=100.0)
