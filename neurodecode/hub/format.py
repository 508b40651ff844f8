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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.errors import ConfigError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
CARD_NAME = "README.md"
EXPORT_FILES = (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME)

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


def to_jsonable(value: Any, where: str = "config") -> Any:
    """Convert ``value`` to plain JSON types (numpy, tensors, OmegaConf and paths included).

    Raises
    ------
    ConfigError
        If something cannot be written to JSON faithfully (an object, a function, ...).
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):  # also MNE's FIFF constants, which subclass int
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # a torch tensor
        return value.detach().cpu().tolist()
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return to_jsonable(OmegaConf.to_container(value, resolve=True), where)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ConfigError(
        f"{where} holds a {type(value).__name__}, which cannot be stored in {CONFIG_NAME}",
        hint="pass plain numbers, strings, lists and dicts as model arguments",
    )
