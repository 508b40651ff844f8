"""LightningModules for pretraining and fine-tuning. Importing registers them in ``TASKS``."""

from neurodecode.tasks import classification, retrieval, seizure  # noqa: F401
from neurodecode.tasks import pretrain  # noqa: F401
