"""LightningModules for pretraining and fine-tuning. Importing registers them in ``TASKS``."""

from neurodecode.tasks import classification, pretrain, retrieval, seizure  # noqa: F401
