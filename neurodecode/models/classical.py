"""Classical decoders fitted in closed form: CSP + LDA, Riemannian tangent space + logistic
regression, and hand-made EEG features + logistic regression or gradient boosting.

They are registered in :data:`~neurodecode.registry.CLASSICAL_MODELS` (not ``MODELS``: they
have no gradients, no embedding and no Hub export) and are built from a config like the
deep encoders (``model=csp_lda``). Each wraps a scikit-learn estimator in a
:class:`torch.nn.Module` with the encoders' signal contract and ``forward``: the task fits
it once on the training windows (:meth:`ClassicalModel.fit`) and then tests it with the
same code as a deep model, the class log-probabilities standing in for the logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import torch
from mne.decoding import CSP
from mne.utils import use_log_level
from pyriemann.estimation import Covariances
from pyriemann.tangentspace import TangentSpace
from scipy.signal import welch
from sklearn.base import BaseEstimator
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from neurodecode.errors import ConfigError, ContractError, did_you_mean
from neurodecode.models.base import check_positive
from neurodecode.registry import CLASSICAL_MODELS

# Smallest probability a log-probability is taken of (a confident estimator's exact zeros).
_TINY = 1e-12
# An eigenvalue below this fraction of a covariance's largest counts as zero.
_RANK_TOLERANCE = 1e-10
# Frequency bands (Hz) of the EEG features: delta, theta, alpha, beta, gamma.
DEFAULT_BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 70.0))


def _one_thread() -> threadpool_limits:
    """One BLAS and OpenMP thread: these methods decompose many small (channels x
    channels) matrices or fit small tables, where threads cost more than they gain
    (pyriemann's OAS covariances of 300 windows of 64 channels: 15.5 s with OpenBLAS's
    threads against 0.5 s with one, on a loaded 2-core machine)."""
    return threadpool_limits(limits=1)


class ClassicalModel(nn.Module):
    """A scikit-learn classifier behind the encoders' signal contract.

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq : int, int, int, float
        Signal contract of the data; ``n_outputs`` is the number of classes.
    chs_info : list of dict, optional
        Channel descriptions (accepted for the contract; unused).

    Notes
    -----
    ``forward`` returns ``log p(class | window)`` of shape ``(batch, n_outputs)``, so the
    softmax a task applies to logits gives the estimator's probabilities back.
    """

    # Fitted once on the training windows by the task, never by gradient descent.
    closed_form: ClassVar[bool] = True

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        # the encoders' contract checks (models.base), without their layers or argument capture
        self.n_chans = check_positive("n_chans", n_chans, int)
        self.n_outputs = check_positive("n_outputs", n_outputs, int)
        self.n_times = check_positive("n_times", n_times, int)
        self.sfreq = check_positive("sfreq", sfreq, float)
        self.estimator: BaseEstimator | None = None

    def make_estimator(self) -> BaseEstimator:
        """A new, unfitted scikit-learn classifier of ``(n, n_chans, n_times)`` windows."""
        raise NotImplementedError

    def check_training(self, x: np.ndarray, y: np.ndarray) -> None:
        """Refuse training windows the method cannot fit (nothing to refuse by default)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> Self:
        """Fit the estimator on training windows ``x`` ``(n, n_chans, n_times)``, labels ``y``.

        Raises
        ------
        ContractError
            If the windows do not match the signal contract, hold a single class, or the
            method cannot use them (see :meth:`check_training`).
        """
        x = self._windows(x)
        y = np.asarray(y).astype(int)
        if len(y) != len(x) or np.unique(y).size < 2:
            raise ContractError(
                f"{type(self).__name__} needs labelled windows of at least two classes; got "
                f"{len(x)} windows, {len(y)} labels, classes {sorted(set(y.tolist()))}"
            )
        self.check_training(x, y)
        # MNE's CSP logs every covariance it estimates; one thread (see _one_thread)
        with use_log_level("WARNING"), _one_thread():
            self.estimator = self.make_estimator().fit(x, y)
        return self

    def forward(
        self,
        x: Tensor,
        ch_pos: Tensor | None = None,
        ch_mask: Tensor | None = None,
        return_features: bool = False,
    ) -> Tensor:
        """Class log-probabilities ``(batch, n_outputs)`` of windows ``x``."""
        if return_features:
            raise ContractError(f"{type(self).__name__} is a classifier without an embedding")
        if self.estimator is None:
            raise ContractError(f"{type(self).__name__} is used before it was fitted")
        with _one_thread():
            proba = self.estimator.predict_proba(self._windows(x.detach().cpu().numpy()))
        full = np.full((len(proba), self.n_outputs), _TINY)
        full[:, self.estimator.classes_] = np.maximum(proba, _TINY)
        return torch.as_tensor(np.log(full), dtype=torch.float32, device=x.device)

    def _windows(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 3 or x.shape[1:] != (self.n_chans, self.n_times):
            raise ContractError(
                f"{type(self).__name__} expects windows (n, {self.n_chans}, {self.n_times}), "
                f"got {x.shape}"
            )
        return x


@CLASSICAL_MODELS.register("csp_lda")
class CSPLDA(ClassicalModel):
    """Common spatial patterns (``mne.decoding.CSP``, log-variance) + linear discriminant.

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq, chs_info
        See :class:`ClassicalModel`.
    n_components : int
        Spatial filters kept; at most ``n_chans``.
    reg : str or float, optional
        Covariance regularisation of CSP (``ledoit_wolf`` copes with a common average
        reference, which leaves the covariances one rank short).
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float,
                 chs_info: Sequence[Mapping[str, Any]] | None = None, n_components: int = 4,
                 reg: str | float | None = "ledoit_wolf") -> None:  # fmt: skip
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        if n_chans < 2:
            raise ConfigError(
                f"CSP needs at least 2 channels to form spatial filters; the data have {n_chans}",
                hint="use model=eeg_features for single-channel data",
            )
        if not 1 <= n_components <= n_chans:
            raise ConfigError(
                f"CSP n_components={n_components} must lie between 1 and the {n_chans} channels"
            )
        self.n_components = n_components
        self.reg = reg

    def make_estimator(self) -> BaseEstimator:
        csp = CSP(n_components=self.n_components, reg=self.reg, log=True)
        return make_pipeline(csp, LinearDiscriminantAnalysis())


@CLASSICAL_MODELS.register("tangent_space")
class TangentSpaceLR(ClassicalModel):
    """Riemannian tangent space of the window covariances (pyriemann) + logistic regression.

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq, chs_info
        See :class:`ClassicalModel`.
    estimator : str
        pyriemann covariance estimator: ``oas`` or ``lwf`` (shrunk, always full rank) or
        ``scm`` (sample covariance; refused when the windows' covariances are singular).
    metric : str
        Riemannian metric of the reference point and the tangent map.
    C : float
        Inverse regularisation strength of the logistic regression.
    """

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float,
                 chs_info: Sequence[Mapping[str, Any]] | None = None, estimator: str = "oas",
                 metric: str = "riemann", C: float = 1.0) -> None:  # fmt: skip
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        self.covariance = estimator
        self.metric = metric
        self.C = C

    def check_training(self, x: np.ndarray, y: np.ndarray) -> None:
        """Refuse rank-deficient covariances, whose tangent space is undefined."""
        eigenvalues = np.linalg.eigvalsh(Covariances(self.covariance).transform(x))
        ranks = (eigenvalues > _RANK_TOLERANCE * eigenvalues[:, -1:]).sum(axis=1)
        short = ranks < self.n_chans
        if short.any():
            raise ContractError(
                f"tangent space needs full-rank covariances, but {int(short.sum())} of "
                f"{len(x)} training windows have covariance rank {int(ranks.min())} < "
                f"{self.n_chans} channels (estimator {self.covariance!r})",
                hint="use a shrunk estimator (model.estimator=oas) or drop dependent channels: "
                "a common average reference removes one rank",
            )

    def make_estimator(self) -> BaseEstimator:
        return make_pipeline(
            Covariances(self.covariance),
            TangentSpace(metric=self.metric),
            LogisticRegression(C=self.C, max_iter=1000),
        )


def window_features(
    x: np.ndarray, sfreq: float, bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
    edge: float = 0.9,
) -> np.ndarray:  # fmt: skip
    """Per channel: log line length, log variance, log band powers, spectral edge frequency
    and zero-crossing rate of windows ``x`` ``(n, n_chans, n_times)``.

    Returns
    -------
    numpy.ndarray
        ``(n, n_chans * (4 + len(bands)))``, bands above the Nyquist frequency left out.
    """
    nyquist = sfreq / 2
    freqs, psd = welch(x, fs=sfreq, nperseg=min(x.shape[-1], int(2 * sfreq)), axis=-1)
    step = freqs[1] - freqs[0]
    powers = [
        psd[..., (freqs >= lo) & (freqs < min(hi, nyquist))].sum(axis=-1) * step
        for lo, hi in bands
        if lo < nyquist
    ]
    cumulative = np.cumsum(psd, axis=-1)
    edge_index = (cumulative < edge * cumulative[..., -1:]).sum(axis=-1)
    centred = x - x.mean(axis=-1, keepdims=True)
    features = [
        np.log(np.abs(np.diff(x, axis=-1)).mean(axis=-1) + _TINY),
        np.log(x.var(axis=-1) + _TINY),
        *(np.log(p + _TINY) for p in powers),
        freqs[np.minimum(edge_index, len(freqs) - 1)],
        (np.diff(np.signbit(centred), axis=-1)).mean(axis=-1),
    ]
    return np.stack(features, axis=-1).reshape(len(x), -1)


@CLASSICAL_MODELS.register("eeg_features")
class EEGFeatures(ClassicalModel):
    """Hand-made window features (:func:`window_features`) + a classifier.

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq, chs_info
        See :class:`ClassicalModel`.
    classifier : {"logreg", "gboost"}
        Logistic regression on standardised features, or histogram gradient boosting;
        both weight the classes by inverse frequency.
    bands : sequence of (low, high)
        Band-power bands in Hz.
    edge : float
        Spectral edge: the frequency below which this share of the power lies.
    """

    CLASSIFIERS: ClassVar[tuple[str, ...]] = ("logreg", "gboost")

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float,
                 chs_info: Sequence[Mapping[str, Any]] | None = None,
                 classifier: str = "logreg", bands: Sequence[Sequence[float]] = DEFAULT_BANDS,
                 edge: float = 0.9) -> None:  # fmt: skip
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        if classifier not in self.CLASSIFIERS:
            raise ConfigError(
                f"eeg_features has no classifier {classifier!r}",
                hint=did_you_mean(classifier, self.CLASSIFIERS),
            )
        if not 0.0 < edge < 1.0:
            raise ConfigError(f"eeg_features edge={edge} must lie strictly between 0 and 1")
        self.classifier = classifier
        self.bands = [tuple(map(float, band)) for band in bands]
        self.edge = edge

    def make_estimator(self) -> BaseEstimator:
        features = FunctionTransformer(
            window_features, kw_args={"sfreq": self.sfreq, "bands": self.bands, "edge": self.edge}
        )
        if self.classifier == "gboost":
            return make_pipeline(features, HistGradientBoostingClassifier(class_weight="balanced"))
        classifier = LogisticRegression(max_iter=2000, class_weight="balanced")
        return make_pipeline(features, StandardScaler(), classifier)
