"""The CPU name every benchmark reports in its ``machine`` field (neurodecode's own, as
results.json and docs/results.md report it)."""

from neurodecode.run.record import cpu_name

__all__ = ["cpu_name"]
