"""Locate the configs, recipes and dataset manifests shipped with neurodecode.

In a source checkout they are the top-level folders ``configs/``, ``recipes/`` and
``data_manifests/``; a wheel carries copies under ``neurodecode/_resources/``.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_RESOURCE_NAMES = ("configs", "recipes", "data_manifests")


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
