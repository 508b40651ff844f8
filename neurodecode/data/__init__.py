"""Data stages: manifests, downloads, readers, montages, preprocessing, windows, cache."""

from neurodecode.data.recording import Recording

__all__ = ["Recording"]
