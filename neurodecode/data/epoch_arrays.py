"""Epoched EEG saved by ``numpy.save`` as a dict of arrays (THINGS-EEG2's preprocessed
release), read without letting the file run code.

``numpy.save`` stores a dict as a pickled object array. Unpickling a downloaded file with
:func:`numpy.load` (``allow_pickle=True``) would let it call any importable function; here
the pickle may only rebuild numpy arrays and dtypes, and anything else in it is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.errors import RecordingError

_REBUILDERS = frozenset(
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
) | {("numpy", "ndarray"), ("numpy", "dtype")}
"""The only callables the pickle may name: what numpy needs to rebuild arrays."""


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays, dicts, lists and strings, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _REBUILDERS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the file asks to run {module}.{name}")


def load_array_dict(path: str | Path) -> dict[str, Any]:
    """The dict a ``.npy`` file holds, rebuilt from plain data only.

    Raises
    ------
    RecordingError
        Not a ``.npy`` file, not a pickled dict, truncated, or the pickle names anything
        but numpy's array rebuilders.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            _, _, dtype = read_header(file)
            if not dtype.hasobject:
                raise RecordingError("holds a plain array, not a dict of arrays", path=path)
            content = _ArraysOnly(file).load()
    except RecordingError:
        raise
    except (OSError, ValueError, EOFError, pickle.UnpicklingError) as err:
        raise RecordingError(f"cannot read the arrays ({err})", path=path) from err
    if isinstance(content, np.ndarray) and content.shape == () and content.dtype == object:
        content = content.item()
    if not isinstance(content, dict):
        raise RecordingError(f"holds a {type(content).__name__}, not a dict", path=path)
    return content
