"""The exported-model folder: file names, format version and JSON conversion.

An exported model is a folder (and a Hub repository) holding exactly:

``model.safetensors``
    the weights (safetensors: tensors only, nothing is unpickled when reading it);
``config.json``
    what is needed to rebuild the model and feed it correctly (see :data:`FORMAT_VERSION`);
``README.md``
    the model card, with Hugging Face Hub metadata in its YAML front matter.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
EXPORT_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)
#: The record of a training run (``runs/<recipe>/<time>/results.json``).
RESULTS_NAME = "results.json"

#: Version of the ``config.json`` layout. A reader accepts versions up to its own and refuses
#: newer ones (their meaning may have changed). Bump only on incompatible changes.
FORMAT_VERSION = 1

#: Suffixes of pickle-based checkpoints, which neurodecode never reads from a download.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
