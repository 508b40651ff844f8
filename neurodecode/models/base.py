"""The encoder base class: signal contract, argument capture, embedding and head.

Every neurodecode encoder derives from :class:`EncoderBase`, in the spirit of braindecode's
``EEGModuleMixin`` (same argument and property names, so tools written for braindecode
models work on ours):

* the **signal contract** ``n_chans, n_outputs, n_times, sfreq, chs_info`` as read-only
  properties, checked once at construction, with the derived ``input_window_seconds`` and
  ``ch_names``, and the electrode positions of ``chs_info`` as the buffer
  ``default_positions``;
* **argument capture**: the arguments a subclass's constructor was called with are
  recorded automatically (defaults filled in), so :meth:`EncoderBase.config_dict` can
  rebuild the model and no model writes its own bookkeeping;
* ``forward(x, ch_pos=None, ch_mask=None, return_features=False)``: the embedding of size
  :attr:`EncoderBase.n_features` from :meth:`EncoderBase.embed`, then the classification
  head, the module ``final_layer``.

Weights exported before the head was called ``final_layer`` name it ``head``; they load
unchanged (:func:`upgrade_state_dict`, also applied by ``load_state_dict``).
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neurodecode.errors import ContractError
from neurodecode.models.blocks import (
    check_channel_inputs,
    check_finite,
    check_signal,
    positions_from_chs_info,
)

#: Name of the classification head module; weights under it are the ones fine-tuning renews.
FINAL_LAYER = "final_layer"
#: The head's name in exports and checkpoints written before :data:`FINAL_LAYER`.
LEGACY_HEAD = "head"


def upgrade_state_dict(state: Mapping[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """``state`` with the legacy head weights (``{prefix}head.*``) renamed to ``final_layer``.

    Parameters
    ----------
    state : mapping of str to Tensor
        Weights of an encoder (``prefix`` empty) or of a module holding one.
    prefix : str
        Where the encoder sits in ``state``, e.g. ``"encoder."``.
    """
    old, new = f"{prefix}{LEGACY_HEAD}.", f"{prefix}{FINAL_LAYER}."
    return {(new + k[len(old) :] if k.startswith(old) else k): v for k, v in state.items()}


def _upgrade_on_load(module: nn.Module, state: dict[str, Tensor], prefix: str, *_: Any) -> None:
    """``load_state_dict`` pre-hook: rename legacy head weights in place."""
    upgraded = upgrade_state_dict(state, prefix)
    if upgraded.keys() != state.keys():
        state.clear()
        state.update(upgraded)


def _capture_arguments(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap a constructor so that its outermost call records the bound arguments."""
    signature = inspect.signature(init)
    if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
        raise TypeError(f"{init.__qualname__} takes *args; encoder arguments must have names")

    @functools.wraps(init)
    def wrapper(self: EncoderBase, *args: Any, **kwargs: Any) -> None:
        if "_init_arguments" not in self.__dict__:  # a subclass's call records, not super()'s
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments: dict[str, Any] = {}
            for name, value in list(bound.arguments.items())[1:]:
                if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(value)
                else:
                    arguments[name] = value
            object.__setattr__(self, "_init_arguments", arguments)
        init(self, *args, **kwargs)

    return wrapper


def check_positive(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (int or float), refused unless positive (and whole for int).

    Raises
    ------
    ContractError
        Naming ``name`` and the value given.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ContractError(f"{name} must be a positive number, got {value!r}")
    if kind is int and int(value) != value:
        raise ContractError(f"{name} must be a whole number, got {value!r}")
    return kind(value)


class EncoderBase(nn.Module):
    """Base of every encoder: ``(batch, n_chans, n_times)`` → ``(batch, n_outputs)``.

    Parameters
    ----------
    n_chans, n_outputs, n_times : int
        Electrodes, outputs and samples per window of the data the model is built for.
    sfreq : float
        Sampling rate in Hz.
    chs_info : sequence of dict, optional
        MNE ``info["chs"]`` entries (``ch_name``, ``loc``), one per channel; their
        locations become :attr:`default_positions`.

    Raises
    ------
    ContractError
        If a size is not a positive whole number, the rate is not positive, or
        ``chs_info`` lists another number of channels than ``n_chans``.

    Notes
    -----
    Subclasses build their layers after ``super().__init__(...)``, set the head as
    ``self.final_layer`` and implement :meth:`embed`; they may set ``self.n_features``
    (otherwise it is measured once with a probe window). Their constructor arguments are
    captured automatically; constructors must not take ``*args``.
    """

    final_layer: nn.Module
    _init_arguments: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _capture_arguments(cls.__init__)  # type: ignore[method-assign]

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self._n_chans = check_positive("n_chans", n_chans, int)
        self._n_outputs = check_positive("n_outputs", n_outputs, int)
        self._n_times = check_positive("n_times", n_times, int)
        self._sfreq = check_positive("sfreq", sfreq, float)
        self._chs_info = None if chs_info is None else [dict(ch) for ch in chs_info]
        if self._chs_info is not None and len(self._chs_info) != self._n_chans:
            raise ContractError(
                f"chs_info lists {len(self._chs_info)} channels; n_chans={n_chans}",
                hint="give one chs_info entry per input row, in the same order",
            )
        self.register_buffer(
            "default_positions", positions_from_chs_info(self._chs_info), persistent=False
        )
        self.register_load_state_dict_pre_hook(_upgrade_on_load)

    @property
    def n_chans(self) -> int:
        """Number of input channels (rows of ``x``)."""
        return self._n_chans

    @property
    def n_outputs(self) -> int:
        """Number of outputs (classes, or 1 for a detector's logit)."""
        return self._n_outputs

    @property
    def n_times(self) -> int:
        """Samples per window the model was built for."""
        return self._n_times

    @property
    def sfreq(self) -> float:
        """Sampling rate of the input in Hz."""
        return self._sfreq

    @property
    def chs_info(self) -> list[dict[str, Any]] | None:
        """MNE-style channel descriptions, or ``None`` if not given."""
        return self._chs_info

    @property
    def input_window_seconds(self) -> float:
        """Window duration in seconds (``n_times / sfreq``)."""
        return self._n_times / self._sfreq

    @property
    def ch_names(self) -> list[str]:
        """Channel names from ``chs_info``.

        Raises
        ------
        ContractError
            If the model was built without ``chs_info``.
        """
        if self._chs_info is None:
            raise ContractError(
                f"{type(self).__name__} was built without chs_info, so its channel names "
                "are unknown",
                hint="pass chs_info (MNE info['chs']) when building the model",
            )
        return [str(ch["ch_name"]) for ch in self._chs_info]

    @functools.cached_property
    def n_features(self) -> int:
        """Size of the embedding ``forward(x, return_features=True)`` returns."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                device = next(self.parameters()).device
                probe = torch.zeros(1, self.n_chans, self.n_times, device=device)
                return int(self(probe, return_features=True).shape[1])
        finally:
            self.train(was_training)

    def resolved_arguments(self) -> dict[str, Any]:
        """Arguments whose value the constructor resolved (e.g. from a preset); none here.

        Subclasses override this so that :meth:`config_dict` rebuilds the same model even
        if the presets change.
        """
        return {}

    def config_dict(self) -> dict[str, Any]:
        """Constructor arguments rebuilding this model (for :mod:`neurodecode.hub` exports).

        The arguments the constructor was called with (defaults filled in, extra keywords
        flattened), ``chs_info`` as plain dicts, and :meth:`resolved_arguments`.
        """
        arguments = dict(self._init_arguments)
        if "chs_info" in arguments:
            arguments["chs_info"] = self.chs_info
        return {**arguments, **self.resolved_arguments()}

    def prepare_input(
        self,
        x: Tensor,
        ch_pos: Tensor | None,
        ch_mask: Tensor | None,
        *,
        fixed_montage: bool = True,
        min_times: int = 1,
        check_finite_input: bool = True,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Check the input against the contract and zero the channels ``ch_mask`` excludes.

        Parameters
        ----------
        x : Tensor
            ``(batch, n_chans, n_times)``.
        ch_pos, ch_mask : Tensor, optional
            Electrode positions ``(batch | 1, n_chans, 3)`` or ``(n_chans, 3)``, and the
            ``(batch, n_chans)`` mask of channels the recording has.
        fixed_montage : bool
            Require exactly :attr:`n_chans` channels (else any number works).
        min_times : int
            Fewest samples the model can use.
        check_finite_input : bool
            Reject NaN/inf values (eager mode only).

        Returns
        -------
        x, ch_pos, ch_mask
            ``x`` with masked channels zeroed, positions as float32, the mask as bool.
        """
        name = self.model_name
        n_chans = self.n_chans if fixed_montage else None
        check_signal(x, n_chans=n_chans, min_times=min_times, model=name)
        ch_pos, ch_mask = check_channel_inputs(x, ch_pos, ch_mask, model=name)
        if ch_mask is not None:
            x = torch.where(ch_mask[:, :, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        if check_finite_input:
            check_finite(x, model=name)
        return x, ch_pos, ch_mask

    @property
    def model_name(self) -> str:
        """The model's name in messages."""
        return type(self).__name__

    def embed(
        self, x: Tensor, ch_pos: Tensor | None = None, ch_mask: Tensor | None = None, **inputs: Any
    ) -> Tensor:
        """The embedding ``(batch, n_features)`` of ``x``; implemented by each encoder."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed()")

    def forward(
        self,
        x: Tensor,
        ch_pos: Tensor | None = None,
        ch_mask: Tensor | None = None,
        return_features: bool = False,
        **inputs: Any,
    ) -> Tensor:
        """Map ``x`` (batch, n_chans, n_times) to (batch, n_outputs), or the embedding.

        Parameters
        ----------
        x : Tensor
            EEG window, float (units as prepared by the data pipeline).
        ch_pos : Tensor, optional
            Electrode positions in metres, ``(batch, n_chans, 3)`` or ``(n_chans, 3)``;
            NaN rows are unknown. Defaults to the positions in ``chs_info``, if any.
        ch_mask : Tensor, optional
            ``(batch, n_chans)`` bool, false for channels the recording lacks.
        return_features : bool
            Return the embedding ``(batch, n_features)`` instead of ``final_layer``'s output.
        **inputs
            Further per-example inputs an encoder's :meth:`embed` takes (e.g.
            ``n_valid_times`` for :class:`~neurodecode.models.patch_conformer.PatchConformer`).
        """
        features = self.embed(x, ch_pos, ch_mask, **inputs)
        return features if return_features else self.final_layer(features)
