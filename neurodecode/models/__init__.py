"""Encoders and baselines. Importing this package registers every model in ``MODELS``.

braindecode is not imported here: :mod:`neurodecode.models.baselines` imports it only
when a baseline is built.
"""

from neurodecode.models import baselines, conformer, pretraining, spiking  # noqa: F401  (registration)
