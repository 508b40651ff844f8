"""Exception types that carry the offending file and the reason in plain words.

Every error raised on purpose by neurodecode derives from :class:`NeurodecodeError`, so
callers (a dataset build, a prediction over a folder) can catch one type, record the
message in a QC report and go on with the next file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from os import PathLike


class NeurodecodeError(Exception):
    """Base class: a reason, and where available the file and a hint on what to do.

    Parameters
    ----------
    reason : str
        What is wrong, in plain words.
    path : str or path-like, optional
        The file, URL or config the problem was found in.
    hint : str, optional
        What the user can do about it.
    """

    def __init__(
        self, reason: str, path: str | PathLike[str] | None = None, hint: str | None = None
    ) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.path}: {self.reason}" if self.path else self.reason
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigError(NeurodecodeError):
    """A configuration, recipe or override is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A name (model, task, dataset, recipe) is not registered; the message lists valid ones."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self._message()


class ForeignTargetError(ConfigError):
    """A config asks to instantiate a class outside neurodecode's registry."""


class ManifestError(NeurodecodeError):
    """A dataset manifest is malformed or unsafe (for example a path leaving the cache)."""


class DownloadError(NeurodecodeError):
    """A file could not be downloaded (HTTP error, truncated transfer)."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published SHA-256 or size."""


class RecordingError(NeurodecodeError):
    """A recording cannot be read or its content is unusable (truncated, NaN, bad header)."""


class AnnotationError(NeurodecodeError):
    """An annotation file is malformed or does not match its recording."""


class ChannelError(NeurodecodeError):
    """Channel names are unknown, duplicated, or missing from a required set."""


class PreprocessingError(NeurodecodeError):
    """A preprocessing step cannot be applied to a recording (e.g. too short, rate too low)."""


class CacheError(NeurodecodeError):
    """The on-disk window cache is inconsistent or cannot be written."""


class ContractError(NeurodecodeError):
    """Data do not match a model's signal contract (channels, rate, length, rank, NaN)."""


class CheckpointError(NeurodecodeError):
    """A checkpoint or exported model cannot be loaded safely or completely."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A hint naming the choices closest to a mistyped ``name``, or listing them all.

    Examples
    --------
    >>> did_you_mean("max_epoch", ["max_epochs", "devices"])
    "did you mean 'max_epochs'?"
    """
    choices = sorted(set(map(str, choices)))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "expected one of: " + ", ".join(choices) if choices else "nothing is available"


def one_paragraph(error: BaseException) -> str:
    """``error: <message>`` on one line, as the command line prints a refused job."""
    return "error: " + " ".join(str(error).split())
