"""Log-variance network: learned spatial filters, log band power, linear classifier.

The trainable form of common spatial patterns (CSP) + LDA for oscillatory decoding on
little data (motor imagery of one subject: tens of trials). A window that preprocessing
has band-passed to the rhythm of interest (8-30 Hz for mu and beta) is projected by
``n_filters`` spatial filters; the log-variance of each filtered signal over time is its
log band power, and a linear layer (``final_layer``) classifies those features.

Before gradient training, :meth:`LogVarianceNet.initialise_from_data` sets the spatial
filters to the CSP filters of the training windows (``mne.decoding.CSP``) and the head to
the linear discriminant of their log-variances, so training starts from the classical
solution and tunes filters and head jointly from there. A model loaded from weights
(``init_from=``) is not re-initialised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from mne.decoding import CSP
from mne.utils import use_log_level
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from torch import Tensor, nn

from neurodecode.errors import ConfigError, ContractError
from neurodecode.models.base import EncoderBase, check_positive
from neurodecode.registry import MODELS

#: Smallest variance taken the log of (a zeroed channel's filter output).
_MIN_VARIANCE = 1e-10


@MODELS.register("log_variance_net")
class LogVarianceNet(EncoderBase):
    """Spatial filters → log-variance over time → linear head.

    Parameters
    ----------
    n_chans, n_outputs, n_times : int
        Electrodes, outputs and samples per window.
    sfreq : float
        Sampling rate in Hz (recorded for the contract; the model has no time scale).
    chs_info : list of dict, optional
        MNE ``info["chs"]``.
    n_filters : int
        Spatial filters (CSP keeps the most discriminative ones); data of fewer channels get
        one per channel.
    dropout : float
        Dropout on the log-variance features during training.
    csp_reg : str or float, optional
        Covariance regularisation of the CSP initialisation (``ledoit_wolf`` copes with the
        one rank a common average reference removes).
    check_inputs_finite : bool
        Reject NaN/inf input in eager mode.
    """

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
        *,
        n_filters: int = 4,
        dropout: float = 0.0,
        csp_reg: str | float | None = "ledoit_wolf",
        check_inputs_finite: bool = True,
    ) -> None:
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        n_filters = min(check_positive("n_filters", n_filters, int), n_chans)
        if n_chans < 2:
            raise ConfigError(
                f"log_variance_net forms spatial filters from 2 channels or more; the data have "
                f"{n_chans}",
                hint="use model=eeg_features for single-channel data",
            )
        if n_times < 2:
            raise ContractError(
                f"log_variance_net needs windows of 2 samples or more, got {n_times}"
            )
        self.csp_reg = csp_reg
        self.check_inputs_finite = check_inputs_finite
        self.spatial_filters = nn.Linear(n_chans, n_filters, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.n_features = n_filters
        self.final_layer = nn.Linear(n_filters, n_outputs)

    def embed(
        self, x: Tensor, ch_pos: Tensor | None = None, ch_mask: Tensor | None = None
    ) -> Tensor:
        """Log-variance of each spatially filtered signal, ``(batch, n_filters)``."""
        x, _, _ = self.prepare_input(
            x, ch_pos, ch_mask, min_times=2, check_finite_input=self.check_inputs_finite
        )
        filtered = self.spatial_filters(x.transpose(1, 2))  # (batch, time, filters)
        variance = filtered.var(dim=1).clamp_min(_MIN_VARIANCE)
        return self.dropout(torch.log(variance))

    @torch.no_grad()
    def initialise_from_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """Start from CSP + LDA fitted on training windows ``x`` ``(n, n_chans, n_times)``.

        Raises
        ------
        ContractError
            If the windows do not match the contract or hold fewer than two classes.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y).astype(int)
        classes = np.unique(y)
        if x.ndim != 3 or x.shape[1] != self.n_chans or len(x) != len(y) or classes.size < 2:
            raise ContractError(
                f"{self.model_name} is initialised from labelled windows (n, {self.n_chans}, "
                f"n_times) of two classes or more; got windows {x.shape}, classes "
                f"{classes.tolist()}"
            )
        weight = self.spatial_filters.weight
        with use_log_level("WARNING"):
            csp = CSP(n_components=len(weight), reg=self.csp_reg, log=True).fit(x, y)
        # CSP orders its filters most discriminative first; data of lower rank than the
        # filter count give fewer (the rest keep their random start)
        filters = torch.as_tensor(csp.filters_[: len(weight)], dtype=weight.dtype)
        weight[: len(filters)] = filters.to(weight.device)
        was_training = self.training
        self.eval()
        features = self.embed(torch.as_tensor(x, dtype=weight.dtype, device=weight.device))
        self.train(was_training)
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        lda.fit(features.cpu().numpy(), y)
        self._set_head(lda, classes)

    def _set_head(self, lda: LinearDiscriminantAnalysis, classes: np.ndarray) -> None:
        """Copy the discriminant's decision function into ``final_layer``."""
        coef, intercept = lda.coef_, lda.intercept_
        head = self.final_layer
        weight = torch.zeros_like(head.weight)
        bias = torch.zeros_like(head.bias)
        as_tensor = lambda a: torch.as_tensor(a, dtype=weight.dtype, device=weight.device)  # noqa: E731
        if self.n_outputs == 1:  # a detector's single logit: the binary decision function
            weight[0], bias[0] = as_tensor(coef[0]), as_tensor(intercept[0])
        elif classes.size == 2:  # logits whose difference is the decision function
            weight[classes[1]], bias[classes[1]] = (
                as_tensor(coef[0] / 2),
                as_tensor(intercept[0] / 2),
            )
            weight[classes[0]], bias[classes[0]] = -weight[classes[1]], -bias[classes[1]]
        else:
            weight[classes], bias[classes] = as_tensor(coef), as_tensor(intercept)
        head.weight.copy_(weight)
        head.bias.copy_(bias)
