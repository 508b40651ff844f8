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

__all__ = ["__version__", "from_pretrained"]


def __getattr__(name: str):
    # Lazy, so that ``import neurodecode`` does not import torch and huggingface_hub.
    if name == "from_pretrained":
        from neurodecode.hub.load import from_pretrained

        return from_pretrained
    raise AttributeError(f"module 'neurodecode' has no attribute {name!r}")
