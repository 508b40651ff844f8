"""Encoders and baselines. Importing this package registers every model in ``MODELS``.

Every encoder derives from :class:`~neurodecode.models.base.EncoderBase` (the signal
contract, argument capture, embedding and ``final_layer`` head). braindecode is not
imported here: :mod:`neurodecode.models.baselines` imports it only when a baseline is built.
"""

from neurodecode.models import (  # noqa: F401  (registration)
    baselines,
    classical,
    conformer,
    foundation,
    log_variance,
    patch_conformer,
    spiking,
)
from neurodecode.models.base import EncoderBase

__all__ = ["EncoderBase"]
