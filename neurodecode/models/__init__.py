"""Encoders and baselines. Importing this package registers every model in ``MODELS``."""
