"""Artifact detection and the quality-control (QC) report of a dataset build.

Channel checks (in the spirit of PREP, Bigdely-Shamlo et al. 2015): flat channels (robust
standard deviation below a floor), flat-topped channels (clipping or dropout), line noise
that stands out from the other channels, noisy channels by robust deviation (z-score of the
amplitude across channels) and by correlation (too weakly correlated with every other
channel in too many 1-s windows). Bad channels are interpolated with MNE's spherical splines
where positions exist, otherwise masked. Window checks: peak-to-peak, absolute amplitude,
flat windows, flat-topped samples (clipping in some channels, dropout in all).

Every decision is written to a :class:`RecordingQC`; :func:`build_report` gathers them into
the JSON report of a build and :func:`format_summary` prints its summary.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import fft as sp_fft
from scipy import signal as sps

from neurodecode.data import montage
from neurodecode.data.recording import Recording
from neurodecode.files import write_atomic

logger = logging.getLogger(__name__)

LINE_FREQUENCIES = (50.0, 60.0)


@dataclass
class RecordingQC:
    """Every quality decision taken on one recording.

    Attributes
    ----------
    recording : str
        Identifier of the recording in the cache.
    source : str
        File the recording was read from.
    status : str
        ``"ok"`` or ``"failed"``.
    error : dict or None
        ``{"type", "message"}`` when the recording failed.
    bad_channels : dict
        Channel name → reasons it was marked bad.
    interpolated, masked, missing_channels : list of str
        Bad channels rebuilt by spherical splines, bad channels zeroed and masked, target
        channels absent from the recording (zeroed and masked).
    line_noise_db : dict
        Line frequency → median (over channels) peak-to-floor ratio in dB.
    notch_freq : float or None
        The line frequency that was notched.
    windows_total, windows_kept : int
        Windows cut from the recording, and kept after rejection.
    windows_rejected : dict
        Reason → number of windows rejected for it.
    windows_by_label, rejected_by_label : dict
        Integer label (as a string; ``"-1"``: unlabelled) → windows cut with that label,
        and how many of them the window checks rejected: what rejection costs each class.
    notes : list of str
        Anything else worth knowing (events outside the recording, skipped checks, ...).
    """

    recording: str
    source: str
    subject: str | None = None
    session: str | None = None
    run: str | None = None
    status: str = "ok"
    error: dict[str, str] | None = None
    n_channels: int = 0
    bad_channels: dict[str, list[str]] = field(default_factory=dict)
    interpolated: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    missing_channels: list[str] = field(default_factory=list)
    line_noise_db: dict[str, float] = field(default_factory=dict)
    notch_freq: float | None = None
    windows_total: int = 0
    windows_kept: int = 0
    windows_rejected: dict[str, int] = field(default_factory=dict)
    windows_by_label: dict[str, int] = field(default_factory=dict)
    rejected_by_label: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def mark_bad(self, channel: str, reason: str) -> None:
        """Record that ``channel`` is bad, and why."""
        self.bad_channels.setdefault(channel, []).append(reason)

    def count_by_label(self, labels: np.ndarray, rejected: np.ndarray) -> None:
        """Record how many windows of each label were cut and how many were rejected.

        Parameters
        ----------
        labels : numpy.ndarray
            Integer label of every window cut from the recording.
        rejected : numpy.ndarray
            Boolean, true where the window checks rejected the window.
        """
        labels = np.asarray(labels).astype(int)
        for label in np.unique(labels):
            hit = labels == label
            self.windows_by_label[str(label)] = int(hit.sum())
            self.rejected_by_label[str(label)] = int((hit & np.asarray(rejected)).sum())

    def fail(self, error: BaseException) -> None:
        """Record that the recording could not be processed."""
        self.status = "failed"
        self.error = {"type": type(error).__name__, "message": str(error)}

    def bad_reason_summary(self) -> str:
        """``"flat: Fp1, Fp2; deviation: T7"``: bad channels grouped by reason."""
        groups: dict[str, list[str]] = {}
        for name, reasons in self.bad_channels.items():
            for reason in reasons:
                groups.setdefault(reason.split(":")[0], []).append(name)
        return "; ".join(f"{kind}: {_shorten(names)}" for kind, names in groups.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return dataclasses.asdict(self)


def _shorten(names: list[str], limit: int = 6) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


# --------------------------------------------------------------------------- channel checks


def robust_std(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Standard deviation estimated from the median absolute deviation (1.4826 MAD)."""
    median = np.median(x, axis=axis, keepdims=True)
    return 1.4826 * np.median(np.abs(x - median), axis=axis)


def flag_flat_channels(
    signal_uv: np.ndarray, names: list[str], present: np.ndarray, max_std_uv: float, qc: RecordingQC
) -> None:
    """Mark channels whose robust std (µV) is below ``max_std_uv`` as ``flat``."""
    std = robust_std(signal_uv, axis=1)
    for i in np.flatnonzero(present & (std < max_std_uv)):
        qc.mark_bad(names[i], f"flat: robust std {std[i]:.3g} µV < {max_std_uv:g} µV")


def plateau_mask(signal: np.ndarray, min_run: int) -> np.ndarray:
    """True where a sample belongs to a run of ``min_run`` or more identical samples.

    Such flat tops come from amplifier saturation (clipping) or from dropouts and padding.
    """
    k = min_run - 1
    n_chans, n_times = signal.shape
    if n_times <= k:
        return np.zeros(signal.shape, dtype=bool)
    equal = signal[:, 1:] == signal[:, :-1]
    counts = np.zeros((n_chans, n_times), dtype=np.int32)
    np.cumsum(equal, axis=1, out=counts[:, 1:])
    starts = (counts[:, k:] - counts[:, :-k]) == k  # samples i..i+k identical
    covered = np.zeros((n_chans, n_times + 1), dtype=np.int32)
    np.cumsum(np.pad(starts, ((0, 0), (0, k))), axis=1, out=covered[:, 1:])
    out = np.empty((n_chans, n_times), dtype=bool)  # runs starting in [i - k, i], clipped at 0
    np.greater(covered[:, 1 : k + 1], covered[:, :1], out=out[:, :k])
    np.greater(covered[:, k + 1 :], covered[:, : n_times - k], out=out[:, k:])
    return out


def flag_clipped_channels(
    plateau: np.ndarray, names: list[str], present: np.ndarray, max_fraction: float, qc: RecordingQC
) -> None:
    """Mark channels flat-topped over more than ``max_fraction`` of the recording."""
    fraction = plateau.mean(axis=1)
    for i in np.flatnonzero(present & (fraction > max_fraction)):
        if names[i] in qc.bad_channels:
            continue  # already flat: a flat channel is trivially flat-topped
        qc.mark_bad(
            names[i],
            f"clipping: {100 * fraction[i]:.1f}% of samples flat-topped "
            f"(> {100 * max_fraction:g}%)",
        )


def welch_psd(signal: np.ndarray, sfreq: float, nperseg: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density of each row, as ``scipy.signal.welch`` with its defaults
    (Hann window, 50% overlap, constant detrend, one-sided, mean), vectorised over segments.

    SciPy's welch detrends segment by segment in a Python loop, which dominated the
    line-noise check on long recordings; this gives the same values (to float rounding),
    one channel at a time to keep memory small. Returns ``(freqs, psd)``.
    """
    step = nperseg - nperseg // 2
    window = sps.get_window("hann", nperseg)
    scale = 1.0 / (sfreq * float((window**2).sum()))
    window = window.astype(signal.dtype, copy=False)
    psd = np.empty((signal.shape[0], nperseg // 2 + 1), dtype=signal.dtype)
    for i, row in enumerate(signal):
        segments = np.lib.stride_tricks.sliding_window_view(row, nperseg)[::step]
        segments = (segments - segments.mean(axis=1, keepdims=True)) * window
        power = np.abs(sp_fft.rfft(segments, axis=1)) ** 2
        power = power.mean(axis=0) * scale
        power[1 : None if nperseg % 2 else -1] *= 2  # one-sided; no Nyquist bin when odd
        psd[i] = power
    return sp_fft.rfftfreq(nperseg, 1 / sfreq), psd


def line_noise_db(signal_uv: np.ndarray, sfreq: float, freqs: list[float]) -> np.ndarray:
    """Peak-to-floor ratio (dB) of each channel's spectrum at each of ``freqs``.

    Peak: mean Welch power within ±0.5 Hz of the frequency; floor: median power between 1.5
    and 5 Hz away from it. Returns ``(n_chans, len(freqs))``; NaN where above Nyquist.
    """
    nperseg = min(signal_uv.shape[1], int(round(2 * sfreq)))
    f, psd = welch_psd(signal_uv, sfreq, nperseg)
    out = np.full((signal_uv.shape[0], len(freqs)), np.nan)
    for j, f0 in enumerate(freqs):
        if f0 + 5 >= sfreq / 2:
            continue
        dist = np.abs(f - f0)
        peak = psd[:, dist <= 0.5].mean(axis=1)
        floor = np.median(psd[:, (dist >= 1.5) & (dist <= 5)], axis=1)
        out[:, j] = 10 * np.log10(np.maximum(peak, 1e-30) / np.maximum(floor, 1e-30))
    return out


def detect_line_frequency(signal_uv: np.ndarray, sfreq: float, detect_db: float) -> float | None:
    """The 50 or 60 Hz line frequency whose median peak is at least ``detect_db``, or None."""
    ratios = np.nanmedian(line_noise_db(signal_uv, sfreq, list(LINE_FREQUENCIES)), axis=0)
    if np.all(np.isnan(ratios)) or np.nanmax(ratios) < detect_db:
        return None
    return LINE_FREQUENCIES[int(np.nanargmax(ratios))]


def assess_line_noise(
    signal_uv: np.ndarray,
    sfreq: float,
    names: list[str],
    present: np.ndarray,
    cfg: Any,
    qc: RecordingQC,
) -> float | None:
    """Record 50/60 Hz line noise; mark channels where it is an outlier; return the detected one.

    A channel is bad (``line_noise``) when its ratio is a robust outlier among the channels
    (z > ``cfg.channel_z``) and at least ``cfg.channel_excess_db`` above the channels' median.
    """
    ratios = line_noise_db(signal_uv, sfreq, list(LINE_FREQUENCIES))
    used = present & ~np.isin(names, list(qc.bad_channels))
    if not used.any():
        return None
    medians = np.nanmedian(ratios[used], axis=0) if used.any() else np.full(2, np.nan)
    qc.line_noise_db = {
        f"{f:g}": round(float(m), 2)
        for f, m in zip(LINE_FREQUENCIES, medians, strict=True)
        if not np.isnan(m)
    }
    for j, f0 in enumerate(LINE_FREQUENCIES):
        column = ratios[:, j]
        if np.isnan(column).all() or used.sum() < 3:
            continue
        spread = robust_std(column[used])
        z = (column - np.median(column[used])) / max(float(spread), 0.5)
        excess = column - medians[j]
        for i in np.flatnonzero(used & (z > cfg.channel_z) & (excess > cfg.channel_excess_db)):
            qc.mark_bad(
                names[i],
                f"line_noise: {f0:g} Hz peak {column[i]:.1f} dB above floor "
                f"(channel median {medians[j]:.1f} dB)",
            )
    if np.all(np.isnan(medians)) or np.nanmax(medians) < cfg.detect_db:
        return None
    return LINE_FREQUENCIES[int(np.nanargmax(medians))]


def flag_noisy_channels(
    signal_uv: np.ndarray,
    sfreq: float,
    names: list[str],
    good: np.ndarray,
    cfg: Any,
    qc: RecordingQC,
) -> None:
    """Mark channels noisy by robust deviation or by low correlation (PREP criteria).

    Needs at least 3 good channels; otherwise the check is skipped and noted.
    """
    index = np.flatnonzero(good)
    if len(index) < 3:
        qc.notes.append(f"noisy-channel checks skipped: {len(index)} good channel(s), need 3")
        return
    data = signal_uv[index]
    q75, q25 = np.percentile(data, [75, 25], axis=1)
    amplitude = 0.7413 * (q75 - q25)
    spread = robust_std(amplitude)
    if spread > 0:
        z = (amplitude - np.median(amplitude)) / spread
        for k in np.flatnonzero(z > cfg.deviation_z):
            qc.mark_bad(
                names[index[k]], f"deviation: amplitude z-score {z[k]:.1f} > {cfg.deviation_z:g}"
            )
    corr = cfg.correlation
    length = int(round(corr.window_s * sfreq))
    n_windows = data.shape[1] // length
    if n_windows == 0:
        qc.notes.append("correlation check skipped: recording shorter than one window")
        return
    x = data[:, : n_windows * length].reshape(len(index), n_windows, length).transpose(1, 0, 2)
    x = x - x.mean(axis=2, keepdims=True)
    norm = np.linalg.norm(x, axis=2)
    gram = x @ x.transpose(0, 2, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.abs(gram / (norm[:, :, None] * norm[:, None, :]))
    r = np.nan_to_num(r)
    r[:, np.arange(len(index)), np.arange(len(index))] = 0.0
    low = (r.max(axis=2) < corr.threshold).mean(axis=0)
    for k in np.flatnonzero(low > corr.max_bad_fraction):
        qc.mark_bad(
            names[index[k]],
            f"correlation: max |r| with other channels < "
            f"{corr.threshold:g} in {100 * low[k]:.0f}% of "
            f"{corr.window_s:g}-s windows",
        )


def interpolate_bad_channels(
    recording: Recording, bad: np.ndarray, good: np.ndarray
) -> tuple[Recording, np.ndarray]:
    """Rebuild bad channels from good ones with MNE's spherical splines, where possible.

    Only referential channels with known positions are interpolated (never bipolar pairs),
    and only from at least 4 good channels with positions.

    Returns
    -------
    recording : Recording
        With interpolated channels replaced.
    interpolated : numpy.ndarray
        Bool per channel: True where a bad channel was rebuilt.
    """
    import mne

    positions = recording.ch_pos
    if positions is None:
        positions = montage.channel_positions(recording.ch_names)
    positions = np.asarray(positions, dtype=float)
    usable = np.isfinite(positions).all(axis=1) & np.array(
        ["-" not in n for n in recording.ch_names]
    )
    interpolated = bad & usable
    donors = good & usable
    if not interpolated.any() or donors.sum() < 4:
        return recording, np.zeros_like(bad)
    keep = np.flatnonzero(interpolated | donors)
    names = [recording.ch_names[i] for i in keep]
    info = mne.create_info(names, recording.sfreq, "eeg")
    raw = mne.io.RawArray(recording.signal[keep].astype(np.float64), info, verbose="error")
    raw.set_montage(
        mne.channels.make_dig_montage(
            dict(zip(names, positions[keep], strict=True)), coord_frame="head"
        ),
        verbose="error",
    )
    raw.info["bads"] = [recording.ch_names[i] for i in np.flatnonzero(interpolated)]
    raw.interpolate_bads(reset_bads=True, verbose="error")
    out = recording.signal.copy()
    out[keep] = raw.get_data().astype(out.dtype)
    return dataclasses.replace(recording, signal=out), interpolated


# --------------------------------------------------------------------------- window checks


def reject_windows(
    signal_uv: np.ndarray,
    starts: np.ndarray,
    n_times: int,
    sfreq: float,
    good: np.ndarray,
    cfg: Any,
    plateau_cumsum: np.ndarray | None = None,
    raw_sfreq: float | None = None,
    raw_good: np.ndarray | None = None,
) -> np.ndarray:
    """The reason each window is rejected (``""`` when kept).

    Reasons in order of precedence: ``dropout`` (flat-topped in all good channels),
    ``clipping`` (flat-topped in some), ``amplitude`` (|x| > max_abs_uv), ``peak_to_peak``
    (> max_ptp_uv), ``flat`` (< min_ptp_uv), all over good channels only. A limit set to
    None is not checked (seizure tasks keep every amplitude: ictal activity is large).

    Parameters
    ----------
    signal_uv : numpy.ndarray
        ``(n_chans, n_samples)`` preprocessed signal in µV.
    starts : numpy.ndarray
        Window start samples; each window spans ``n_times`` samples at ``sfreq``.
    cfg : mapping
        ``artifacts.windows`` of the preprocessing config.
    plateau_cumsum : numpy.ndarray, optional
        Cumulative flat-top counts of the raw signal (rate ``raw_sfreq``).
    raw_good : numpy.ndarray, optional
        Channels whose raw samples count for clipping/dropout (default ``good``); excludes
        bad channels that were interpolated.
    """
    reasons = np.full(len(starts), "", dtype=object)
    if len(starts) == 0 or not good.any():
        return reasons
    data = signal_uv[good]
    offsets = np.arange(n_times)
    chunk = max(1, int(2**24 // max(1, data.shape[0] * n_times)))
    ptp = np.empty((len(starts), data.shape[0]), dtype=np.float32)
    peak = np.empty_like(ptp)
    for a in range(0, len(starts), chunk):
        w = data[:, starts[a : a + chunk, None] + offsets]  # (chans, windows, times)
        ptp[a : a + chunk] = (w.max(axis=2) - w.min(axis=2)).T
        peak[a : a + chunk] = np.abs(w).max(axis=2).T
    limits = [
        ("flat", ptp, cfg.min_ptp_uv, np.less),
        ("peak_to_peak", ptp, cfg.max_ptp_uv, np.greater),
        ("amplitude", peak, cfg.max_abs_uv, np.greater),
    ]
    checks = [
        (reason, beyond(value, limit).any(axis=1))
        for reason, value, limit, beyond in limits
        if limit is not None
    ]
    if plateau_cumsum is not None:
        a = np.round(starts / sfreq * raw_sfreq).astype(int)
        b = np.minimum(
            np.round((starts + n_times) / sfreq * raw_sfreq).astype(int),
            plateau_cumsum.shape[1] - 1,
        )
        a = np.minimum(a, b - 1)
        counts = plateau_cumsum[:, b] - plateau_cumsum[:, a]
        trusted = good if raw_good is None else raw_good
        fraction = (counts / np.maximum(b - a, 1))[trusted].T  # (windows, trusted chans)
        over = fraction > cfg.max_plateau_fraction
        checks += [("clipping", over.any(axis=1)), ("dropout", over.all(axis=1))]
    for reason, hit in checks:  # listed from lowest to highest precedence
        reasons[hit] = reason
    return reasons


# --------------------------------------------------------------------------- report


def build_report(
    records: list[RecordingQC],
    *,
    classes: list[str] | None = None,
    warn_class_loss: float | None = None,
    **header: Any,
) -> dict[str, Any]:
    """Gather per-recording QC into one report with a summary.

    Parameters
    ----------
    records : list of RecordingQC
        One per recording of the build (failed ones included).
    classes : list of str, optional
        Class names by integer label, for the per-class counts (default: the labels).
    warn_class_loss : float, optional
        A class whose share of rejected windows exceeds this gets a line in the summary's
        ``warnings`` (and in the build's log): the checks may be removing what the task
        looks for. None: no warning.
    **header
        Extra top-level fields (dataset, cache key, config, ...).
    """
    failed = [r for r in records if r.status != "ok"]
    rejected: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    for r in records:
        rejected.update(r.windows_rejected)
        for reasons in r.bad_channels.values():
            bad.update({reason.split(":")[0] for reason in reasons})
    summary = {
        "recordings": len(records),
        "succeeded": len(records) - len(failed),
        "failed": len(failed),
        "windows_total": sum(r.windows_total for r in records),
        "windows_kept": sum(r.windows_kept for r in records),
        "windows_rejected": dict(rejected),
        "bad_channels": dict(bad),
        "interpolated": sum(len(r.interpolated) for r in records),
        "masked": sum(len(r.masked) for r in records),
        "windows_per_class": per_class(records, classes or []),
    }
    summary["warnings"] = class_loss_warnings(summary["windows_per_class"], warn_class_loss)
    return {**header, "summary": summary, "recordings": [r.to_dict() for r in records]}


def per_class(records: list[RecordingQC], classes: list[str]) -> dict[str, dict[str, Any]]:
    """``{class: {"windows", "rejected", "rejected_fraction"}}`` over ``records``.

    Labels beyond ``classes`` keep their number; ``-1`` is ``unlabelled``.
    """
    cut: Counter[int] = Counter()
    rejected: Counter[int] = Counter()
    for r in records:
        cut.update({int(k): v for k, v in r.windows_by_label.items()})
        rejected.update({int(k): v for k, v in r.rejected_by_label.items()})
    out = {}
    for label in sorted(cut):
        name = "unlabelled" if label < 0 else str(label)
        if 0 <= label < len(classes):
            name = classes[label]
        out[name] = {
            "windows": cut[label],
            "rejected": rejected[label],
            "rejected_fraction": rejected[label] / cut[label] if cut[label] else 0.0,
        }
    return out


def class_loss_warnings(counts: dict[str, dict[str, Any]], threshold: float | None) -> list[str]:
    """One sentence per class whose rejected share is above ``threshold``."""
    if threshold is None:
        return []
    return [
        f"window rejection removed {c['rejected']} of {c['windows']} {name!r} windows "
        f"({c['rejected_fraction']:.1%}, above {threshold:.1%}): the artifact limits "
        "(artifacts.windows) may be removing what the task looks for"
        for name, c in counts.items()
        if c["rejected_fraction"] > threshold
    ]


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the report as JSON atomically (temporary file, then rename)."""
    write_atomic(path, json.dumps(report, indent=2, default=str))


def format_summary(report: dict[str, Any], max_lines: int = 20) -> str:
    """A few human-readable lines: totals, rejections by reason, bad channels, failures."""
    s = report["summary"]
    lines = [
        f"QC: {s['succeeded']}/{s['recordings']} recordings processed, {s['failed']} failed; "
        f"{s['windows_kept']}/{s['windows_total']} windows kept",
    ]
    if s["windows_rejected"]:
        lines.append(
            "  windows rejected: "
            + ", ".join(f"{k} {v}" for k, v in sorted(s["windows_rejected"].items()))
        )
    if s["windows_rejected"] and s.get("windows_per_class"):
        lines.append(
            "  rejected per class: "
            + ", ".join(
                f"{name} {c['rejected']}/{c['windows']}"
                for name, c in s["windows_per_class"].items()
            )
        )
    lines += [f"  WARNING: {warning}" for warning in s.get("warnings", [])]
    if s["bad_channels"]:
        lines.append(
            "  bad channels: "
            + ", ".join(f"{k} {v}" for k, v in sorted(s["bad_channels"].items()))
            + f" (interpolated {s['interpolated']}, masked {s['masked']})"
        )
    details = []
    for r in report["recordings"]:
        if r["status"] != "ok":
            details.append(f"  FAILED {r['recording']}: {r['error']['message']}")
        elif r["bad_channels"]:
            items = "; ".join(f"{n} ({', '.join(v)})" for n, v in r["bad_channels"].items())
            details.append(f"  {r['recording']}: bad {items}")
    lines += details[:max_lines]
    if len(details) > max_lines:
        lines.append(f"  ... {len(details) - max_lines} more in the JSON report")
    return "\n".join(lines)
