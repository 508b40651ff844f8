"""The plain object every reader returns and every later stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

ANNOTATION_COLUMNS = ("onset", "duration", "description")

UNITS = {
    **dict.fromkeys(("eeg", "eog", "ecg", "emg", "seeg", "ecog", "dbs"), "V"),
    **dict.fromkeys(("mag", "ref_meg"), "T"),
    "grad": "T/m",
}
"""SI unit of the samples of each MNE channel type whose unit is fixed; other types (stim,
resp, bio, misc, ...) hold what the file holds."""


def empty_annotations() -> pd.DataFrame:
    """An annotation table with no rows and the standard columns."""
    return pd.DataFrame(
        {
            "onset": pd.Series(dtype=float),
            "duration": pd.Series(dtype=float),
            "description": pd.Series(dtype=str),
        }
    )


@dataclass
class Recording:
    """One continuous recording, in volts, with its events and provenance.

    Attributes
    ----------
    signal : numpy.ndarray
        ``(n_chans, n_times)`` samples in **volts** (MNE's convention).
    sfreq : float
        Sampling rate in Hz.
    ch_names : list of str
        Channel names as found in the file (harmonisation happens later, in ``montage``).
    ch_types : list of str
        MNE channel types (``"eeg"``, ``"grad"``, ``"mag"``, ``"eog"``, ``"stim"``, ...).
    annotations : pandas.DataFrame
        Columns ``onset`` (s from the start of ``signal``), ``duration`` (s), ``description``.
    source : pathlib.Path
        The file (or BIDS folder) the recording was read from.
    subject, session, run : str or None
        Identifiers used for leakage-free splits.
    meas_date : datetime or None
        Acquisition start as stored in the file.
    ch_pos : numpy.ndarray or None
        ``(n_chans, 3)`` positions in metres (head frame); NaN rows where unknown.
    """

    signal: np.ndarray
    sfreq: float
    ch_names: list[str]
    ch_types: list[str]
    source: Path
    annotations: pd.DataFrame = field(default_factory=empty_annotations)
    subject: str | None = None
    session: str | None = None
    run: str | None = None
    meas_date: datetime | None = None
    ch_pos: np.ndarray | None = None

    @property
    def n_chans(self) -> int:
        """Number of channels."""
        return int(self.signal.shape[0])

    @property
    def n_times(self) -> int:
        """Number of samples per channel."""
        return int(self.signal.shape[1])

    @property
    def ch_units(self) -> list[str]:
        """SI unit of each channel (:data:`UNITS`); ``"as recorded"`` for other types."""
        return [UNITS.get(kind, "as recorded") for kind in self.ch_types]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_times / self.sfreq

    def to_raw(self):
        """Return the recording as an :class:`mne.io.RawArray` (annotations included)."""
        import mne

        info = mne.create_info(list(self.ch_names), self.sfreq, list(self.ch_types))
        raw = mne.io.RawArray(self.signal, info, verbose="error")
        if len(self.annotations):
            raw.set_annotations(
                mne.Annotations(
                    self.annotations["onset"].to_numpy(float),
                    self.annotations["duration"].to_numpy(float),
                    self.annotations["description"].astype(str).tolist(),
                )
            )
        return raw
