"""Channel harmonisation: canonical 10-05 names, bipolar pairs, positions and derivations.

Recordings name the same electrode in many ways (``T3`` and ``T7``, ``EEG FP1-REF``,
eegmmidb's ``Fp1.``, CHB-MIT's ``FP1-F7`` bipolar pairs). This module maps every name onto
the spelling of MNE's standard 10-05 montage, derives whatever channel set a model expects
and says, through a boolean mask, which target channels could not be obtained.

Conventions
-----------
* A **referential** channel is one electrode against the recording reference (``"Fp1"``);
  a **bipolar** channel is the difference of two electrodes (``"Fp1-F7"`` = Fp1 − F7).
* Old 10-20 names are aliases of their 10-05 successors: T3→T7, T4→T8, T5→P7, T6→P8.
* Unknown names are a :class:`~neurodecode.errors.ChannelError` in :func:`canonical_name`;
  :func:`harmonise` ignores channels it cannot name (they cannot contribute to a target),
  logging them, unless ``unknown="raise"``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from neurodecode.data.recording import Recording
from neurodecode.errors import ChannelError

logger = logging.getLogger(__name__)

ALIASES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
"""Old 10-20 names and their 10-05 equivalents."""

DOUBLE_BANANA = (
    "Fp1-F7", "F7-T7", "T7-P7", "P7-O1",
    "Fp1-F3", "F3-C3", "C3-P3", "P3-O1",
    "Fp2-F4", "F4-C4", "C4-P4", "P4-O2",
    "Fp2-F8", "F8-T8", "T8-P8", "P8-O2",
    "Fz-Cz", "Cz-Pz",
)  # fmt: skip
"""The longitudinal bipolar montage of CHB-MIT (its first 18 channels) and TCP recordings."""

SZCORE_19 = (
    "Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
    "F7", "F8", "T7", "T8", "P7", "P8", "Fz", "Cz", "Pz",
)  # fmt: skip
"""SzCORE's 19 referential 10-20 channels (used average-referenced)."""

PRESETS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "double_banana": (DOUBLE_BANANA, None),
    "szcore_19": (SZCORE_19, "average"),
}
"""Named targets for :func:`harmonise`: channel list and reference applied afterwards."""

# Prefixes and suffixes that name the recording set-up, not the electrode.
_PREFIX = re.compile(r"^EEG[\s_-]+", re.IGNORECASE)
_REFERENCE_SUFFIX = re.compile(r"[-_ ](?:REF|LE|AR|AVG|CAR|AV)$", re.IGNORECASE)
_REF = "REF"  # the graph node standing for the recording reference


@functools.cache
def _standard_positions() -> dict[str, np.ndarray]:
    """Positions (metres, MNE head frame) of the standard 10-05 montage, keyed by name."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    kind = "colin27_1005" if "colin27_1005" in builtin else "standard_1005"  # renamed in 1.12
    standard = mne.channels.make_standard_montage(kind)
    info = mne.create_info(standard.ch_names, 1000.0, "eeg")
    info.set_montage(standard)  # transforms the template's positions into the head frame
    return {ch["ch_name"]: np.array(ch["loc"][:3], float) for ch in info["chs"]}


@functools.cache
def _by_lower() -> dict[str, str]:
    return {name.lower(): name for name in _standard_positions()}


def _electrode(token: str) -> str | None:
    """Canonical name of one electrode token, or None when unknown."""
    token = token.strip().strip(".").strip()
    name = _by_lower().get(token.lower())
    if name is None:
        return None
    return ALIASES.get(name, name)


@functools.lru_cache(maxsize=4096)  # a dataset repeats the same few dozen names per file
def try_canonical_name(name: str) -> str | None:
    """Like :func:`canonical_name`, but None (instead of an error) for unknown names."""
    text = _PREFIX.sub("", name.strip()).strip().rstrip(".")
    text = _REFERENCE_SUFFIX.sub("", text)
    single = _electrode(text)
    if single is not None:
        return single
    parts = text.split("-")
    if len(parts) == 2:
        first, second = _electrode(parts[0]), _electrode(parts[1])
        if first is not None and second is not None and first != second:
            return f"{first}-{second}"
    return None


def canonical_name(name: str) -> str:
    """Map a channel name onto the 10-05 spelling (``"EEG T3-REF"`` → ``"T7"``).

    Parameters
    ----------
    name : str
        A referential or bipolar channel name as found in a file.

    Returns
    -------
    str
        ``"Fp1"`` style for referential channels, ``"Fp1-F7"`` for bipolar pairs.

    Raises
    ------
    ChannelError
        If the name is not a 10-05 electrode or a pair of them.
    """
    canonical = try_canonical_name(name)
    if canonical is None:
        raise ChannelError(
            f"unknown channel name {name!r}: not a 10-05 electrode or a pair of them",
            hint="rename it, or pass it through harmonise(..., unknown='ignore')",
        )
    return canonical


# Canonical names of non-EEG channels, matched against each word of a channel name, and the
# MNE type they stand for. EDF and most EEG formats type every channel "eeg"; these words
# say what the file does not.
NON_EEG_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern, re.IGNORECASE))
    for kind, pattern in (
        ("ecg", r"(?:ECG|EKG)\d*[LR]?"),
        ("eog", r"(?:EOG|[HV]EOG|LOC|ROC)\d*[LR]?"),
        ("emg", r"EMG\d*[LR]?|CHIN\d*"),
        ("resp", r"RESP\w*|THORAX|THOR|ABDOMEN|ABDO|ABD|AIRFLOW|FLOW|CHEST"),
        ("bio", r"S[PA]O2|PULSE|PLETH|OXIMETRY|OXIMETER|OX|HR"),
        ("stim", r"TRIG\w*|STATUS|STI|STIM|EVENTS?|MARKERS?|MARK|ANNOTATIONS?"),
        ("misc", r"DC\d*"),
    )
)
"""``(MNE channel type, pattern)``: a channel whose name has a word matching the pattern
(``"EEG EKG1-REF"``, ``"Resp chest"``, ``"SpO2"``, ``"STI 014"``, ``"DC01"``) is that type."""


def channel_type(name: str, read_as: str = "eeg") -> str:
    """The MNE type of a channel, correcting EEG-by-default readers by its canonical name.

    Parameters
    ----------
    name : str
        The channel name as the file spells it.
    read_as : str
        The type the reader gave it. Only ``"eeg"`` is reconsidered (EDF, BDF, GDF and
        many other formats type every channel EEG); a type the file declared is kept.

    Returns
    -------
    str
        ``read_as``, or ``ecg``, ``eog``, ``emg``, ``resp``, ``bio`` (SpO2, pulse),
        ``stim`` (triggers, status, annotations) or ``misc`` (DC inputs) where a word of a
        name that is not a 10-05 electrode says so.
    """
    if read_as != "eeg" or try_canonical_name(name) is not None:
        return read_as
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    for kind, pattern in NON_EEG_NAMES:
        if any(pattern.fullmatch(word) for word in words):
            return kind
    return read_as


def is_bipolar(name: str) -> bool:
    """Whether a canonical name is a bipolar pair (``"Fp1-F7"``)."""
    return "-" in name


def channel_positions(names: Sequence[str]) -> np.ndarray:
    """3-D positions in metres from MNE's standard 10-05 montage.

    Parameters
    ----------
    names : sequence of str
        Channel names in any spelling :func:`canonical_name` understands.

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` float; bipolar pairs sit at the midpoint of their electrodes, unknown
        names are NaN rows.
    """
    positions = _standard_positions()
    out = np.full((len(names), 3), np.nan)
    for i, name in enumerate(names):
        canonical = try_canonical_name(name)
        if canonical is None:
            continue
        electrodes = canonical.split("-")
        out[i] = np.mean([positions[e] for e in electrodes], axis=0)
    return out


def deduplicate(recording: Recording, names: Sequence[str] | None = None) -> Recording:
    """Keep one copy of channels that share a name (``names``, default the recording's).

    CHB-MIT lists ``T8-P8`` twice with identical samples: the later copy is dropped and the
    drop is logged. Same-named channels with different samples cannot be told apart.

    Raises
    ------
    ChannelError
        If two channels with the same name hold different samples.
    """
    names = list(recording.ch_names if names is None else names)
    first: dict[str, int] = {}
    keep: list[int] = []
    for i, name in enumerate(names):
        if name not in first:
            first[name] = i
            keep.append(i)
            continue
        j = first[name]
        if not np.array_equal(recording.signal[i], recording.signal[j]):
            raise ChannelError(
                f"channels {recording.ch_names[j]!r} and {recording.ch_names[i]!r} are both "
                f"named {name!r} but hold different samples",
                path=recording.source,
                hint="rename one of them in the file",
            )
        logger.warning(
            "%s: channel %r appears more than once with identical samples; kept the first",
            recording.source,
            name,
        )
    if len(keep) == len(names):
        return recording
    return _select(recording, keep)


def _select(recording: Recording, index: Sequence[int]) -> Recording:
    index = list(index)
    return replace(
        recording,
        signal=recording.signal[index],
        ch_names=[recording.ch_names[i] for i in index],
        ch_types=[recording.ch_types[i] for i in index],
        ch_pos=None if recording.ch_pos is None else recording.ch_pos[index],
    )


def _derive(edges: dict[str, list[tuple[str, int, float]]], start: str, end: str):
    """Shortest chain of recorded channels from electrode ``start`` to ``end``.

    ``edges[a]`` lists ``(b, row, sign)``: recorded row ``row`` times ``sign`` is a − b.
    Returns a list of ``(row, sign)`` whose signed sum is start − end, or None.
    """
    previous: dict[str, tuple[str, int, float] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == end:
            chain = []
            while previous[node] is not None:
                parent, row, sign = previous[node]
                chain.append((row, sign))
                node = parent
            return chain
        for neighbour, row, sign in edges.get(node, ()):
            if neighbour not in previous:
                previous[neighbour] = (node, row, sign)
                queue.append(neighbour)
    return None


def harmonise(
    recording: Recording,
    target: str | Sequence[str],
    *,
    reference: str | None = None,
    unknown: str = "ignore",
) -> tuple[Recording, np.ndarray]:
    """Map a recording onto a target channel set, deriving channels where possible.

    Every recorded channel is an edge between two electrodes (referential channels join
    the electrode to the recording reference); a target channel is the signed sum along the
    shortest chain of recorded channels between its electrodes. So bipolar pairs come from
    referential data (Fp1 − F7), from the reversed pair, or from a chain of pairs; a
    referential target needs a referential recording.

    Parameters
    ----------
    recording : Recording
        Any montage; names in any spelling :func:`canonical_name` understands.
    target : str or sequence of str
        A preset name (``"double_banana"``, ``"szcore_19"``) or channel names.
    reference : {None, "average"}
        ``"average"`` re-references the (referential) target channels to the mean of the
        available ones. Preset ``"szcore_19"`` implies it.
    unknown : {"ignore", "raise"}
        What to do with recorded channels whose names are unknown.

    Returns
    -------
    recording : Recording
        Channels named and ordered as ``target`` (canonical spelling), positions filled
        in; target channels that could not be derived are zeros.
    mask : numpy.ndarray
        ``(n_target,)`` bool, True where the channel was derived from data.

    Raises
    ------
    ChannelError
        If the target has unknown names, if ``unknown="raise"`` and the recording has
        unknown names, if two recorded channels mean the same electrode(s) but differ, or
        if no target channel can be derived.
    """
    target_names, reference = _resolve_target(target, reference)
    named = _known_channels(recording, unknown)
    rows = {(try_canonical_name(name)): i for i, name in enumerate(named.ch_names)}
    signal, mask = _derive_targets(named, rows, target_names)
    if not mask.any():
        raise ChannelError(
            f"none of the target channels ({', '.join(target_names)}) can be derived from the "
            f"recorded channels ({', '.join(recording.ch_names)})",
            path=recording.source,
        )
    missing = [n for n, ok in zip(target_names, mask, strict=True) if not ok]
    if missing:
        logger.info(
            "%s: target channels missing (masked): %s", recording.source, ", ".join(missing)
        )
    result = replace(
        recording,
        signal=signal,
        ch_names=target_names,
        ch_types=["eeg"] * len(target_names),
        ch_pos=channel_positions(target_names),
    )
    if reference == "average":
        result = average_reference(result, mask)
    return result, mask


def _resolve_target(
    target: str | Sequence[str], reference: str | None
) -> tuple[list[str], str | None]:
    """Canonical target channel names and the reference, presets expanded and checked."""
    if isinstance(target, str):
        if target not in PRESETS:
            raise ChannelError(f"unknown channel set {target!r}; presets are {', '.join(PRESETS)}")
        target, preset_reference = PRESETS[target]
        reference = reference or preset_reference
    if reference not in (None, "average"):
        raise ChannelError(f"unknown reference {reference!r}; use None or 'average'")
    bad_target = [name for name in target if try_canonical_name(name) is None]
    if bad_target:
        raise ChannelError(f"target channel set has unknown names: {', '.join(bad_target)}")
    return [canonical_name(name) for name in target], reference


def _known_channels(recording: Recording, unknown: str) -> Recording:
    """The recording's channels with known names, canonically named and deduplicated."""
    canonical = [try_canonical_name(name) for name in recording.ch_names]
    unknown_names = [n for n, c in zip(recording.ch_names, canonical, strict=True) if c is None]
    if unknown_names:
        if unknown == "raise":
            raise ChannelError(
                f"unknown channel names: {', '.join(unknown_names)}", path=recording.source
            )
        logger.info(
            "%s: ignoring channels with unknown names: %s",
            recording.source,
            ", ".join(unknown_names),
        )
    known = [i for i, c in enumerate(canonical) if c is not None]
    return deduplicate(_select(recording, known), [canonical[i] for i in known])


def _edges(rows: dict[str, int]) -> dict[str, list[tuple[str, int, float]]]:
    """The electrode graph of recorded channels: ``edges[a]`` lists ``(b, row, sign)``."""
    edges: dict[str, list[tuple[str, int, float]]] = {}
    for name, row in rows.items():
        first, _, second = name.partition("-")
        second = second or _REF
        edges.setdefault(first, []).append((second, row, 1.0))
        edges.setdefault(second, []).append((first, row, -1.0))
    return edges


def _derive_targets(
    named: Recording, rows: dict[str, int], target_names: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each target channel as the signed sum along the shortest chain of recorded ones."""
    edges = _edges(rows)
    signal = np.zeros((len(target_names), named.n_times), dtype=named.signal.dtype)
    mask = np.zeros(len(target_names), dtype=bool)
    for k, name in enumerate(target_names):
        first, _, second = name.partition("-")
        chain = _derive(edges, first, second or _REF)
        if chain is None:
            continue
        mask[k] = True
        if len(chain) == 1 and chain[0][1] > 0:  # a recorded channel as it is: one copy
            signal[k] = named.signal[chain[0][0]]
            continue
        for row, sign in chain:
            (np.add if sign > 0 else np.subtract)(signal[k], named.signal[row], out=signal[k])
    return signal, mask


def average_reference(recording: Recording, mask: np.ndarray | None = None) -> Recording:
    """Subtract the mean of the referential EEG channels (where ``mask``) from each of them.

    Parameters
    ----------
    recording : Recording
        Referential EEG channels (other channel types are left untouched).
    mask : numpy.ndarray, optional
        Bool per channel; False rows (missing channels) are left as they are and do not
        enter the mean.

    Raises
    ------
    ChannelError
        If a channel that would enter the mean is bipolar, or none would.
    """
    use = np.array([t == "eeg" for t in recording.ch_types])
    if mask is not None:
        use &= np.asarray(mask, bool)
    bipolar = [
        n
        for n, u in zip(recording.ch_names, use, strict=True)
        if u and (c := try_canonical_name(n)) is not None and is_bipolar(c)
    ]
    if bipolar:
        raise ChannelError(
            f"cannot average-reference bipolar channels: {', '.join(bipolar)}",
            path=recording.source,
        )
    if not use.any():
        raise ChannelError("no referential EEG channel to average", path=recording.source)
    signal = recording.signal.copy()
    signal[use] -= signal[use].mean(axis=0, keepdims=True)
    return replace(recording, signal=signal)


@dataclass
class ChannelMapping:
    """How a model's channels are obtained from the channels of the data.

    Attributes
    ----------
    source, target : list of str
        The data's channel names as given, and the model's in canonical spelling.
    matrix : numpy.ndarray
        ``(n_target, n_source)`` float32: target = ``matrix @ source`` (a row of zeros for
        a missing channel).
    status : list of str
        Per target channel: ``matched`` (a data channel as it is), ``derived`` (a signed
        sum of data channels, e.g. a bipolar pair from referential channels) or
        ``missing``.
    formula : list of str
        Per target channel, how it is computed (``"Fp1 - F7"``), empty when missing.
    """

    source: list[str]
    target: list[str]
    matrix: np.ndarray
    status: list[str]
    formula: list[str]

    def names(self, status: str) -> list[str]:
        """The target channels of one status."""
        return [n for n, s in zip(self.target, self.status, strict=True) if s == status]

    @property
    def is_identity(self) -> bool:
        """Whether the data already are the target channels, in order."""
        square = self.matrix.shape[0] == self.matrix.shape[1]
        return square and bool(np.array_equal(self.matrix, np.eye(len(self.target))))

    def to_dict(self) -> dict[str, object]:
        """Plain data for a report file."""
        return {
            "data_channels": list(self.source),
            "model_channels": list(self.target),
            **{status: self.names(status) for status in ("matched", "derived", "missing")},
            "derivations": {
                n: f for n, f, s in zip(self.target, self.formula, self.status, strict=True)
                if s == "derived"
            },
        }  # fmt: skip


def identity_mapping(source: Sequence[str]) -> ChannelMapping:
    """The data's channels as they are: every one matched, in order.

    Names :func:`canonical_name` knows are given in canonical spelling (``EEG FP1-REF`` is
    ``Fp1``); others (a file's ``Channel 1``) are kept as given, so data without 10-20
    names still reach a model that does not place channels by name.
    """
    names = list(source)
    return ChannelMapping(
        names,
        [try_canonical_name(name) or name for name in names],
        np.eye(len(names), dtype=np.float32),
        ["matched"] * len(names),
        names.copy(),
    )


def map_channels(source: Sequence[str], target: str | Sequence[str]) -> ChannelMapping:
    """Map channels named ``source`` onto ``target`` (a preset or names) by derivation.

    The same graph as :func:`harmonise`: a target channel is the signed sum of the data
    channels along the shortest chain between its electrodes (aliases and spellings
    resolved by :func:`canonical_name`), so bipolar pairs come from referential data; a
    referential target needs referential data. Nothing is re-referenced here.

    Raises
    ------
    ChannelError
        If the target has unknown names.
    """
    target_names, _ = _resolve_target(target, None)
    canonical = [try_canonical_name(name) for name in source]
    rows: dict[str, int] = {}
    for row, name in enumerate(canonical):
        if name is not None:
            rows.setdefault(name, row)
    edges = _edges(rows)
    matrix = np.zeros((len(target_names), len(source)), dtype=np.float32)
    status, formula = [], []
    for k, name in enumerate(target_names):
        first, _, second = name.partition("-")
        chain = _derive(edges, first, second or _REF)
        if chain is None:
            status.append("missing")
            formula.append("")
            continue
        for row, sign in chain:
            matrix[k, row] += sign
        direct = len(chain) == 1 and chain[0][1] > 0
        status.append("matched" if direct else "derived")
        formula.append(
            " ".join(
                f"{'+' if sign > 0 else '-'} {source[row]}" for row, sign in reversed(chain)
            ).removeprefix("+ ")
        )
    return ChannelMapping(list(source), target_names, matrix, status, formula)
