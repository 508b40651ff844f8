"""Atomic file writes: a reader sees the old file or the whole new one, never half of it."""

from __future__ import annotations

import os
from pathlib import Path


def temporary_sibling(path: Path) -> Path:
    """A hidden sibling of ``path`` unique to this process, to be renamed onto ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: str | os.PathLike[str], content: str | bytes) -> Path:
    """Write ``content`` to a temporary sibling of ``path``, then rename it into place.

    The rename is atomic on one file system, so concurrent readers and an interrupted
    writer never leave a truncated ``path``; the temporary file is removed on failure.

    Parameters
    ----------
    path : path-like
        The file to (re)place. Its folder must exist.
    content : str or bytes
        Text (written as UTF-8) or bytes.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
