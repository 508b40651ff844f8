"""Data stages: manifests, downloads, readers, montages, preprocessing, windows, cache."""

from neurodecode.data.io import read_recording
from neurodecode.data.recording import Recording

__all__ = ["Recording", "read_recording"]
