"""neurodecode: EEG/MEG brain-decoding foundation models.

The package is organised as a pipeline (see ``docs/architecture.md``):
``data`` (manifests, downloads, readers, montages, preprocessing, windows, cache)
→ ``models`` → ``tasks`` → ``evaluation`` → ``hub`` / ``predict``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neurodecode")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
