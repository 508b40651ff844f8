"""Strict JSON for files that other programs read (exports, cache metadata, prediction output).

Python's :mod:`json` writes NaN and infinities as the bare tokens ``NaN``/``Infinity``, which
are not JSON: other languages' parsers and the Hugging Face Hub's config viewer reject the
file. :func:`dumps` writes them as ``null`` instead and refuses anything else non-strict.
Readers that expect numbers there (e.g. electrode positions) read ``null`` back as NaN; Python's
:func:`json.loads` still accepts the bare tokens of files written before.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.errors import ConfigError
from neurodecode.files import write_atomic


def jsonable(value: Any, strict: bool = False, where: str = "value") -> Any:
    """Plain JSON values: numpy, tensors, OmegaConf and paths converted, NaN as ``None``.

    Mappings (keys as strings), lists, tuples, arrays and tensors are converted
    recursively; MNE's integer constants become plain ints.

    Parameters
    ----------
    value : Any
        What to convert.
    strict : bool
        Raise for anything that is not plain data (an object, a function, ...) instead of
        returning it unchanged (for ``json.dumps``'s ``default`` hook to decide).
    where : str
        The name of ``value`` in error messages; nested items extend it.

    Raises
    ------
    ConfigError
        With ``strict``, when ``where`` holds something JSON cannot store faithfully.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):  # also MNE's FIFF constants, which subclass int
        return int(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), strict, where)
    if hasattr(value, "detach") and hasattr(value, "tolist"):  # a torch tensor
        return jsonable(value.detach().cpu().tolist(), strict, where)
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return jsonable(OmegaConf.to_container(value, resolve=True), strict, where)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, strict, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, strict, f"{where}[{i}]") for i, v in enumerate(value)]
    if strict:
        raise ConfigError(
            f"{where} holds a {type(value).__name__}, which cannot be stored as JSON",
            hint="pass plain numbers, strings, lists and dicts",
        )
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value``: non-finite floats written as ``null``.

    Keyword arguments go to :func:`json.dumps` (``indent``, ``sort_keys``, ``default``);
    ``allow_nan`` is always ``False``, so a non-finite number that a ``default`` hook returns
    raises ``ValueError`` instead of being written as a bare ``NaN``.
    """
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


def write_json(path: str | Path, value: Any, indent: int | None = 2, **kwargs: Any) -> Path:
    """Write ``value`` to ``path`` as strict JSON (:func:`dumps`), atomically.

    Keyword arguments go to :func:`dumps`. Returns ``path``.
    """
    return write_atomic(path, dumps(value, indent=indent, **kwargs) + "\n")


def nan_for_null(values: Any) -> list[float]:
    """Floats of a JSON number list, ``null`` read back as NaN (e.g. unknown coordinates)."""
    return [math.nan if v is None else float(v) for v in values]


def is_strict(text: str) -> bool:
    """Whether ``text`` is JSON without bare ``NaN``/``Infinity`` tokens."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON token {token}")

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:  # json.JSONDecodeError included
        return False
    return True
