"""braindecode's EEG foundation models as neurodecode encoders.

``model=labram | cbramod | eegpt | biot | reve | signal_jepa`` (``configs/model/<name>.yaml``)
builds braindecode's ``Labram``, ``CBraMod``, ``EEGPT``, ``BIOT``, ``REVE`` or
``SignalJEPA_Contextual`` under neurodecode's signal contract, for the data's channels,
rate and window length, and says plainly how the data meet what the model was pretrained
on:

* **channels**: the model's channel set (``channels``: a preset of
  :mod:`neurodecode.data.montage` or a list of names) is obtained from the data's channels
  by :func:`neurodecode.data.montage.map_channels` (aliases, bipolar derivation), applied
  as a fixed matrix inside the model; a channel that cannot be obtained is refused, naming
  it, unless ``allow_missing_channels`` (it is then zeros). Models that place channels by
  name (Labram, EEGPT) or by position (REVE, SignalJEPA) are given the model channels' names
  and their 10-05 positions in ``chs_info``.
* **sampling rate**: data at another rate than ``model_sfreq`` are resampled inside the
  model (band-limited, by FFT) when ``on_other_sfreq: resample``, refused when ``refuse``.
* **units**: ``input_units`` is what the model was pretrained on (``uV``, ``uV/100``,
  ``mV`` or ``normalised``); :func:`check_units` refuses data scaled otherwise (the run
  layer calls it with the preprocessing the window cache was built with).

braindecode is imported only when such a model is built.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from neurodecode.data.montage import (
    ChannelMapping,
    channel_positions,
    identity_mapping,
    map_channels,
)
from neurodecode.errors import ChannelError, ConfigError, ContractError
from neurodecode.models.base import EncoderBase
from neurodecode.models.baselines import BraindecodeModel, braindecode_model_class
from neurodecode.registry import MODELS

#: ``on_other_sfreq`` values.
SFREQ_POLICIES = ("resample", "refuse")


def scale_of_units(units: str) -> float | None:
    """µV per unit of ``units`` (``"uV/100"`` → 100; ``"normalised"`` → None).

    Raises
    ------
    ConfigError
        If ``units`` is none of ``uV``, ``uV/<k>``, ``mV``, ``normalised``.
    """
    text = str(units).replace("µ", "u").replace(" ", "")
    if text == "normalised":
        return None
    if text == "mV":
        return 1000.0
    if text == "uV":
        return 1.0
    if text.startswith("uV/"):
        try:
            return float(text[3:])
        except ValueError:
            pass
    raise ConfigError(f"unknown input_units {units!r}", hint="use uV, uV/<scale>, mV or normalised")


def data_units(scaling: Mapping[str, Any]) -> str:
    """The units of windows scaled by ``preprocess.scaling`` (``uV/100`` or ``normalised``)."""
    if scaling.get("method") == "fixed":
        return f"uV/{float(scaling.get('scale_uv', 1.0)):g}"
    return "normalised"


def check_units(model: str, expected: str, scaling: Mapping[str, Any]) -> None:
    """Refuse data whose units (from ``preprocess.scaling``) are not ``expected``.

    Raises
    ------
    ContractError
        Naming both units and the preprocessing that gives the expected ones.
    """
    want, have = scale_of_units(expected), scale_of_units(data_units(scaling))
    same = (want is None and have is None) or (
        want is not None and have is not None and math.isclose(want, have, rel_tol=1e-9)
    )
    if same:
        return
    hint = (
        "preprocess.scaling.method=robust_zscore"
        if want is None
        else f"preprocess.scaling.method=fixed preprocess.scaling.scale_uv={want:g}"
    )
    raise ContractError(
        f"{model} was pretrained on inputs in {expected}, but the data are scaled to "
        f"{data_units(scaling)} (preprocess.scaling: {dict(scaling)})",
        hint=f"set {hint}",
    )


def fft_resample(x: Tensor, n_out: int) -> Tensor:
    """Band-limited resampling of the last axis to ``n_out`` samples (by FFT, as MNE's)."""
    n_in = x.shape[-1]
    if n_in == n_out:
        return x
    spectrum = torch.fft.rfft(x.float(), dim=-1)
    keep = n_out // 2 + 1
    if spectrum.shape[-1] >= keep:
        spectrum = spectrum[..., :keep]
    else:
        spectrum = torch.nn.functional.pad(spectrum, (0, keep - spectrum.shape[-1]))
    return (torch.fft.irfft(spectrum, n=n_out, dim=-1) * (n_out / n_in)).to(x.dtype)


class FoundationModel(BraindecodeModel):
    """A braindecode foundation model fed from the data's channels, rate and units.

    Parameters
    ----------
    n_chans, n_outputs, n_times, sfreq, chs_info
        The data's signal contract (``chs_info`` gives the channel names to map from).
    model_sfreq : float
        The rate (Hz) the model was pretrained at (required; the model configs set it).
    on_other_sfreq : {"resample", "refuse"}
        What to do with data at another rate.
    input_units : str
        Units the model was pretrained on (``uV``, ``uV/<k>``, ``mV``, ``normalised``);
        checked against the data by :func:`check_units`.
    channels : str or sequence of str, optional
        The model's channels (a montage preset or names); None: the data's, as they are.
    allow_missing_channels : bool
        Zero model channels the data cannot give instead of refusing.
    check_inputs_finite : bool
        Reject NaN/inf input in eager mode.
    **kwargs
        Passed to the braindecode class (its architecture: depth, width, patch size).

    Raises
    ------
    ChannelError
        If model channels cannot be obtained from the data's (naming them) and
        ``allow_missing_channels`` is false, or the model does not know a channel.
    ContractError
        If the rate differs and ``on_other_sfreq`` is ``refuse``.
    """

    braindecode_class: ClassVar[str]
    #: The model takes the channel names in each call (Labram's ``ch_names=``).
    names_in_call: ClassVar[bool] = False

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
        *,
        model_sfreq: float | None = None,
        on_other_sfreq: str = "resample",
        input_units: str = "normalised",
        channels: str | Sequence[str] | None = None,
        allow_missing_channels: bool = False,
        check_inputs_finite: bool = True,
        **kwargs: Any,
    ) -> None:
        EncoderBase.__init__(self, n_chans, n_outputs, n_times, sfreq, chs_info)
        self.name = self.braindecode_class
        self.check_inputs_finite = check_inputs_finite
        self.input_units = input_units
        self.allow_missing_channels = allow_missing_channels
        scale_of_units(input_units)  # a config error now, not after the data are built
        self.mapping = self._map(channels, allow_missing_channels)
        # decided once: a numpy test inside forward would break a torch.compile graph
        self.identity_mapping = bool(self.mapping.is_identity)
        self.register_buffer("channel_matrix", torch.from_numpy(self.mapping.matrix), False)
        if model_sfreq is None:
            raise ConfigError(
                f"{self.model_name} needs model_sfreq, the rate (Hz) it was pretrained at",
                hint=f"model={type(self).__name__.lower()} sets it (configs/model/)",
            )
        self.model_sfreq = float(model_sfreq)
        self.model_times = self._model_times(on_other_sfreq)
        names = self.mapping.target
        positions = channel_positions(names)
        model_chs = [
            {"ch_name": n, "loc": [*map(float, p), *[0.0] * 9]}
            for n, p in zip(names, positions, strict=True)
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (FutureWarning, UserWarning))
            self.net = braindecode_model_class(self.braindecode_class)(
                n_chans=len(names),
                n_outputs=n_outputs,
                n_times=self.model_times,
                sfreq=self.model_sfreq,
                chs_info=model_chs,
                **kwargs,
            )
        self.after_build()

    def _map(self, channels: str | Sequence[str] | None, allow_missing: bool) -> ChannelMapping:
        if self.chs_info is None:
            raise ChannelError(
                f"{self.model_name} needs the data's channel names (chs_info) to map them onto "
                "its channels"
            )
        source = self.ch_names
        mapping = identity_mapping(source) if channels is None else map_channels(source, channels)
        missing = mapping.names("missing")
        if missing and not allow_missing:
            raise ChannelError(
                f"{self.model_name} needs channels the data cannot give: {', '.join(missing)} "
                f"(data channels: {', '.join(source)})",
                hint="choose data whose montage has them (preprocess.channels.target), or set "
                "allow_missing_channels=true to feed zeros",
            )
        self.check_channels(mapping.target)
        return mapping

    def check_channels(self, names: Sequence[str]) -> None:
        """Refuse channels the model cannot place (none here; see subclasses)."""

    def after_build(self) -> None:
        """Adjust the braindecode model once built (nothing here; see subclasses)."""

    def _model_times(self, policy: str) -> int:
        if policy not in SFREQ_POLICIES:
            raise ConfigError(
                f"on_other_sfreq={policy!r}; expected one of {', '.join(SFREQ_POLICIES)}"
            )
        if math.isclose(self.sfreq, self.model_sfreq, rel_tol=1e-9):
            return self.n_times
        if policy == "refuse":
            raise ContractError(
                f"{self.model_name} was pretrained at {self.model_sfreq:g} Hz; the data are "
                f"sampled at {self.sfreq:g} Hz",
                hint=f"set preprocess.resample={self.model_sfreq:g}, or "
                "model.on_other_sfreq=resample",
            )
        return round(self.n_times * self.model_sfreq / self.sfreq)

    def report(self) -> dict[str, Any]:
        """How the data meet the model: channels, rate, window and units (plain data)."""
        return {
            "model": self.model_name,
            "channels": self.mapping.to_dict(),
            "sfreq": {"data": self.sfreq, "model": self.model_sfreq},
            "n_times": {"data": self.n_times, "model": self.model_times},
            "resampled": self.model_times != self.n_times,
            "input_units": self.input_units,
        }

    def to_model(self, x: Tensor) -> Tensor:
        """The data window as the model's channels at the model's rate."""
        if not self.identity_mapping:
            x = torch.einsum("tc,bcn->btn", self.channel_matrix.to(x.dtype), x)
        return fft_resample(x, self.model_times)

    def run_net(self, x: Tensor) -> Tensor:
        """The braindecode model on a prepared data window."""
        kwargs = {"ch_names": self.mapping.target} if self.names_in_call else {}
        return self.net(self.to_model(x), **kwargs)


def _vocabulary_check(model: str, names: Sequence[str], known: Sequence[str]) -> None:
    known_upper = {k.upper() for k in known}
    unknown = [n for n in names if n.upper() not in known_upper]
    if unknown:
        raise ChannelError(
            f"{model} has no embedding for channel(s) {', '.join(unknown)}",
            hint="map the data onto channels it knows (model.channels)",
        )


@MODELS.register("labram")
class Labram(FoundationModel):
    """braindecode's Labram (Jiang et al., 2024); channels placed by name."""

    braindecode_class = "Labram"
    names_in_call = True

    def check_channels(self, names: Sequence[str]) -> None:
        from braindecode.models.labram import LABRAM_CHANNEL_ORDER

        _vocabulary_check(self.model_name, names, LABRAM_CHANNEL_ORDER)


@MODELS.register("cbramod")
class CBraMod(FoundationModel):
    """braindecode's CBraMod (Wang et al., 2025); any channel set."""

    braindecode_class = "CBraMod"


@MODELS.register("eegpt")
class EEGPT(FoundationModel):
    """braindecode's EEGPT (Wang et al., 2024); channels placed by name."""

    braindecode_class = "EEGPT"

    def check_channels(self, names: Sequence[str]) -> None:
        from braindecode.models.eegpt import EEGPT_CHANNELS

        _vocabulary_check(self.model_name, names, EEGPT_CHANNELS)


@MODELS.register("biot")
class BIOT(FoundationModel):
    """braindecode's BIOT (Yang et al., 2023); channels by order."""

    braindecode_class = "BIOT"


@MODELS.register("reve")
class REVE(FoundationModel):
    """braindecode's REVE (El Ouahidi et al., 2025); channels placed by position.

    braindecode looks the positions up in REVE's position bank, downloaded on first use
    into the MNE data folder (or read from ``REVE_POSITIONS_PATH``).
    """

    braindecode_class = "REVE"


@MODELS.register("signal_jepa")
class SignalJEPA(FoundationModel):
    """braindecode's SignalJEPA_Contextual (Guetschel et al., 2024); placed by position."""

    braindecode_class = "SignalJEPA_Contextual"

    def after_build(self) -> None:
        """Freeze the pretraining decoder: kept so that checkpoints load whole, but the
        classifier never runs it."""
        for parameter in self.net.transformer.decoder.parameters():
            parameter.requires_grad = False
