"""Locate the configs, recipes and dataset manifests shipped with neurodecode, and the
project's reference recordings.

In a source checkout they are the top-level folders ``configs/``, ``recipes/`` and
``data_manifests/``; a wheel carries copies under ``neurodecode/_resources/``. The reference
recordings (excerpts and a dataset mirror, used by the notebooks and the tests) live beside
the checkout in ``../shared/data``, or wherever ``NEURODECODE_SHARED_DATA`` names
(:func:`shared_data`).
"""

from __future__ import annotations

import os
from pathlib import Path

from neurodecode.errors import NeurodecodeError

_PACKAGE_DIR = Path(__file__).resolve().parent
_RESOURCE_NAMES = ("configs", "recipes", "data_manifests")
SHARED_DATA_ENV = "NEURODECODE_SHARED_DATA"


def resource_dir(name: str) -> Path:
    """Return the directory holding one kind of shipped resource.

    Parameters
    ----------
    name : {"configs", "recipes", "data_manifests"}
        Which resource folder.

    Returns
    -------
    pathlib.Path
        The installed copy if present, else the source checkout's folder.
    """
    if name not in _RESOURCE_NAMES:
        raise ValueError(f"unknown resource folder {name!r}; expected one of {_RESOURCE_NAMES}")
    for candidate in (_PACKAGE_DIR / "_resources" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"neurodecode's {name!r} folder is missing from both the installed package and the "
        "source tree; reinstall neurodecode"
    )


def model_config_path(name: str) -> Path:
    """``configs/model/<name>.yaml``: the shipped config of the model registered as ``name``
    (it may not exist for a model registered without one)."""
    return resource_dir("configs") / "model" / f"{name}.yaml"


def shared_data(relative: str = "") -> Path:
    """A file or folder of the project's reference recordings, from any working directory.

    Parameters
    ----------
    relative : str
        Its path inside the reference data (``"excerpts/chbmit/chb01_03_seizure_crop.edf"``);
        empty for the root (``excerpts/``, ``mirror/``, ...).

    Returns
    -------
    pathlib.Path
        ``$NEURODECODE_SHARED_DATA/<relative>`` when the variable is set, else
        ``<checkout>/../shared/data/<relative>`` beside the source checkout.

    Raises
    ------
    NeurodecodeError
        If it does not exist there.
    """
    configured = os.environ.get(SHARED_DATA_ENV)
    root = (
        Path(configured).expanduser()
        if configured
        else _PACKAGE_DIR.parent.parent / "shared" / "data"
    )
    path = root / relative
    if not path.exists():
        raise NeurodecodeError(
            "the project's reference data is not there",
            path=path,
            hint=f"set {SHARED_DATA_ENV} to the folder holding excerpts/ and mirror/",
        )
    return path
