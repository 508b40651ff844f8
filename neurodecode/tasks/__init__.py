"""LightningModules for pretraining and fine-tuning. Importing registers them in ``TASKS``."""
