"""braindecode models as baselines under neurodecode's signal contract.

``MODELS.build("braindecode", name="EEGConformer", n_chans=22, ...)`` (in a config:
``model=braindecode model.name=EEGConformer``) builds any model of ``braindecode.models``
by class name, e.g. ``EEGNetv4`` (``EEGNet`` in braindecode ≥ 1.0), ``ShallowFBCSPNet``,
``EEGConformer``, ``ATCNet``. braindecode is imported only when such a model is built, so
``import neurodecode`` never pulls it in (install it with ``pip install neurodecode[braindecode]``).

Contract differences from neurodecode's own encoders, all checked with clear errors:
the input must have exactly ``n_times`` samples (braindecode heads are sized from it),
``ch_pos`` is ignored (these models have no position encoding) and channels marked missing
in ``ch_mask`` are zeroed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from neurodecode.errors import ConfigError, ContractError, UnknownNameError
from neurodecode.models.base import EncoderBase
from neurodecode.registry import MODELS

# Names that braindecode has renamed; the old name still works here.
ALIASES = {"EEGNetv4": "EEGNet"}

# The baselines every recipe is tested with (any braindecode model name works).
DEFAULT_BASELINES = ("EEGConformer", "EEGNetv4", "ShallowFBCSPNet", "ATCNet")


def braindecode_model_class(name: str) -> type[nn.Module]:
    """The braindecode model class called ``name`` (imports braindecode).

    Raises
    ------
    ConfigError
        If braindecode is not installed.
    UnknownNameError
        If braindecode has no model of that name.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            import braindecode.models as zoo
            from braindecode.models.base import EEGModuleMixin
    except ImportError as err:
        raise ConfigError(
            f"baseline {name!r} needs braindecode, which is not installed ({err})",
            hint="pip install 'neurodecode[braindecode]'",
        ) from err
    cls = getattr(zoo, name, None) or getattr(zoo, ALIASES.get(name, ""), None)
    if not (isinstance(cls, type) and issubclass(cls, EEGModuleMixin)):
        valid = sorted(
            n
            for n in dir(zoo)
            if isinstance(getattr(zoo, n), type)
            and issubclass(getattr(zoo, n), EEGModuleMixin)
            and getattr(zoo, n) is not EEGModuleMixin
        )
        raise UnknownNameError(
            f"braindecode has no model {name!r}; valid names are: {', '.join(valid)}"
        )
    return cls


@MODELS.register("braindecode")
class BraindecodeModel(EncoderBase):
    """A braindecode model, by class name, under neurodecode's signal contract.

    Parameters
    ----------
    n_chans, n_outputs, n_times : int
        Electrodes, outputs and samples per window (inputs must have exactly ``n_times``).
    sfreq : float
        Sampling rate in Hz.
    chs_info : list of dict, optional
        MNE ``info["chs"]``, passed on to braindecode.
    name : str
        braindecode model class, e.g. ``"EEGConformer"``, ``"EEGNetv4"``, ``"ATCNet"``.
    check_inputs_finite : bool
        Reject NaN/inf input in eager mode (skipped under ``torch.compile``).
    **kwargs
        Passed to the braindecode model.
    """

    def __init__(
        self,
        n_chans: int,
        n_outputs: int,
        n_times: int,
        sfreq: float,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
        *,
        name: str = "EEGConformer",
        check_inputs_finite: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(n_chans, n_outputs, n_times, sfreq, chs_info)
        self.name = name
        self.check_inputs_finite = check_inputs_finite
        if chs_info is not None:
            kwargs["chs_info"] = list(chs_info)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (FutureWarning, UserWarning))
            self.net = braindecode_model_class(name)(
                n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq, **kwargs
            )

    @property
    def model_name(self) -> str:
        """``braindecode <class name>``, for messages."""
        return f"braindecode {self.name}"

    @property
    def final_layer(self) -> nn.Module:
        """braindecode's own classification head (inside :attr:`net`)."""
        final = getattr(self.net, "final_layer", None)
        if final is None:
            raise ContractError(
                f"braindecode {self.name} has no final_layer, so its embedding is not defined",
                hint="use return_features=False",
            )
        return final

    def forward(
        self,
        x: Tensor,
        ch_pos: Tensor | None = None,
        ch_mask: Tensor | None = None,
        return_features: bool = False,
    ) -> Tensor:
        """Map ``x`` (batch, n_chans, n_times) to (batch, n_outputs), or the embedding.

        ``ch_pos`` is accepted for the common contract and ignored; channels false in
        ``ch_mask`` are zeroed. ``return_features=True`` returns the flattened input of
        braindecode's ``final_layer`` (for models whose final layer is a list of layers
        applied to several windows, e.g. ATCNet, the inputs concatenated).
        """
        x, _, _ = self.prepare_input(
            x, None, ch_mask, min_times=self.n_times, check_finite_input=self.check_inputs_finite
        )
        if x.shape[2] != self.n_times:
            raise ContractError(
                f"{self.model_name} was built for windows of {self.n_times} samples; got "
                f"{x.shape[2]} (input shape {tuple(x.shape)})",
                hint="braindecode heads are sized from n_times; build the model for this length",
            )
        return self.embed(x) if return_features else self.run_net(x)

    def run_net(self, x: Tensor) -> Tensor:
        """braindecode's model on a prepared window (subclasses adapt the window first)."""
        return self.net(x)

    def embed(
        self, x: Tensor, ch_pos: Tensor | None = None, ch_mask: Tensor | None = None
    ) -> Tensor:
        """The flattened input of braindecode's ``final_layer`` for a prepared ``x``."""
        final = self.final_layer
        layers = list(final) if isinstance(final, nn.ModuleList) else [final]
        captured: list[Tensor] = []
        handles = [
            layer.register_forward_pre_hook(lambda _, args: captured.append(args[0].flatten(1)))
            for layer in layers
        ]
        try:
            self.run_net(x)
        finally:
            for handle in handles:
                handle.remove()
        return torch.cat(captured, dim=1)
