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


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays converted, NaN and infinities as ``None``.

    Mappings (keys as strings), lists, tuples and arrays are converted recursively, paths
    become strings; anything else is returned unchanged (for ``json.dumps``'s ``default``).
    """
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON text of ``value``: non-finite floats written as ``null``.

    Keyword arguments go to :func:`json.dumps` (``indent``, ``sort_keys``, ``default``);
    ``allow_nan`` is always ``False``, so a non-finite number that a ``default`` hook returns
    raises ``ValueError`` instead of being written as a bare ``NaN``.
    """
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


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
