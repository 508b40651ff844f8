"""The log-variance network: CSP + LDA start, contract, refusals, and the recipe default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mne.decoding import CSP
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline

from neurodecode import train
from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.log_variance import LogVarianceNet
from neurodecode.registry import MODELS


def imagery_like(n_trials: int = 60, n_chans: int = 8, n_times: int = 256, seed: int = 0):
    """Trials whose class changes the power of one hidden source, mixed into the channels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n_trials) % 2
    sources = rng.standard_normal((n_trials, n_chans, n_times))
    sources[:, 0] *= np.where(y == 1, 2.0, 0.7)[:, None]
    sources[:, 1] *= np.where(y == 1, 0.7, 2.0)[:, None]
    mixing = rng.standard_normal((n_chans, n_chans))
    return np.einsum("ij,njt->nit", mixing, sources).astype(np.float32), y


def test_the_start_is_csp_plus_lda_before_any_gradient_step():
    x, y = imagery_like()
    model = LogVarianceNet(8, 2, 256, 128.0, n_filters=4)
    untrained = model(torch.as_tensor(x)).argmax(1).numpy()
    model.initialise_from_data(x, y)
    model.eval()
    with torch.no_grad():
        predicted = model(torch.as_tensor(x)).argmax(1).numpy()
    reference = make_pipeline(
        CSP(n_components=4, reg="ledoit_wolf", log=True),
        LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
    ).fit(x.astype(np.float64), y)
    assert (predicted == y).mean() >= 0.95 > (untrained == y).mean()
    assert (predicted == reference.predict(x.astype(np.float64))).mean() >= 0.95
    # the filters are trainable parameters, the head is final_layer
    assert model.spatial_filters.weight.requires_grad and model.final_layer.out_features == 2


def test_a_detector_logit_and_three_classes_get_their_head():
    x, y = imagery_like()
    detector = LogVarianceNet(8, 1, 256, 128.0)
    detector.initialise_from_data(x, y)
    with torch.no_grad():
        logit = detector.eval()(torch.as_tensor(x))[:, 0].numpy()
    assert ((logit > 0) == y).mean() >= 0.95
    three = np.arange(len(y)) % 3
    model = LogVarianceNet(8, 3, 256, 128.0)
    model.initialise_from_data(x, three)
    assert model.final_layer.weight.abs().sum(1).min() > 0  # every class has a row


def test_data_of_lower_rank_than_the_filters_keep_the_rest_of_the_filters():
    x, y = imagery_like(n_chans=4)
    x[:, 3] = x[:, 2]  # rank 3
    model = LogVarianceNet(4, 2, 256, 128.0, n_filters=4)
    model.initialise_from_data(x, y)
    assert torch.isfinite(model(torch.as_tensor(x))).all()


def test_what_it_cannot_do_is_refused():
    assert LogVarianceNet(3, 2, 256, 128.0, n_filters=4).n_features == 3  # one per channel
    with pytest.raises(ConfigError, match="eeg_features"):
        LogVarianceNet(1, 2, 256, 128.0, n_filters=1)
    x, _ = imagery_like()
    with pytest.raises(ContractError, match="two classes"):
        LogVarianceNet(8, 2, 256, 128.0).initialise_from_data(x, np.zeros(len(x)))


def test_it_is_registered_and_the_motor_imagery_default_in_the_mu_beta_band():
    assert MODELS.get("log_variance_net") is LogVarianceNet
    cfg = train.compose(["recipe=motor_imagery"])
    assert cfg.model._target_ == "log_variance_net"
    assert (cfg.preprocess.bandpass.l_freq, cfg.preprocess.bandpass.h_freq) == (8.0, 30.0)
