"""Signal preprocessing: resample, band-pass and notch, re-reference, harmonise, scale, clip.

Each step takes a :class:`~neurodecode.data.recording.Recording` (volts) and returns a new
one; :func:`preprocess_recording` chains them with the artifact checks of
:mod:`neurodecode.data.artifacts` in the order given by a preprocessing config
(``configs/preprocess/*.yaml``, loaded by :func:`load_preprocess_config`).

Band-pass and notch are one zero-phase FIR filter (the two windowed-sinc kernels convolved),
applied together with resampling in a single FFT pair over all channels in float32: one pass
over the data instead of one per step, filter and channel.
"""

from __future__ import annotations

import dataclasses
import logging
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from scipy import fft as sp_fft
from scipy import signal as sps

from neurodecode.data import artifacts, montage
from neurodecode.data.recording import Recording
from neurodecode.errors import ConfigError, PreprocessingError
from neurodecode.resources import resource_dir

logger = logging.getLogger(__name__)

UV = 1e6  # volts → microvolts


# --------------------------------------------------------------------------- config


def preprocess_config_dir() -> Path:
    """The folder holding the shipped preprocessing configs."""
    return resource_dir("configs") / "preprocess"


def load_preprocess_config(
    name: str | Path = "default", overrides: list[str] | dict | DictConfig | None = None
) -> DictConfig:
    """Load a preprocessing config and apply overrides.

    Parameters
    ----------
    name : str or path
        A file in ``configs/preprocess`` (``"seizure"``) or a path to a YAML file. A file may
        start from others of the same folder with ``defaults: [default]`` (as in Hydra).
    overrides : list of ``key=value`` strings, mapping or DictConfig, optional
        Changes on top of the file, e.g. ``["bandpass.h_freq=30", "windows.length_s=2"]``.

    Returns
    -------
    omegaconf.DictConfig
        The resolved config. Keys not present in ``default.yaml`` are refused.

    Raises
    ------
    ConfigError
        Unknown file or key, or a value of the wrong type; the message names the file.
    """
    path = _config_path(name)
    config = _load_with_defaults(path, seen=())
    schema = OmegaConf.create(_read_yaml(preprocess_config_dir() / "default.yaml"))
    OmegaConf.set_struct(schema, True)
    try:
        config = OmegaConf.merge(schema, config)
        if overrides:
            if isinstance(overrides, list | tuple):
                extra = OmegaConf.from_dotlist(list(overrides))
            else:
                extra = OmegaConf.create(overrides)
            config = OmegaConf.merge(config, extra)
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid preprocessing setting: {err.msg}", path=path) from None
    OmegaConf.set_struct(config, False)
    _validate(config, path)
    return config


def _config_path(name: str | Path) -> Path:
    candidate = Path(name)
    if candidate.suffix in {".yaml", ".yml"} and candidate.is_file():
        return candidate
    path = preprocess_config_dir() / f"{name}.yaml"
    if not path.is_file():
        valid = sorted(p.stem for p in preprocess_config_dir().glob("*.yaml"))
        raise ConfigError(
            f"no preprocessing config named {str(name)!r}",
            path=path,
            hint="choose one of: " + ", ".join(valid),
        )
    return path


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {err}", path=path) from None
    if not isinstance(data, dict):
        raise ConfigError("a preprocessing config must be a mapping", path=path)
    return data


def _load_with_defaults(path: Path, seen: tuple[Path, ...]) -> DictConfig:
    if path in seen:
        raise ConfigError("the 'defaults' list refers back to this file", path=path)
    data = _read_yaml(path)
    merged = OmegaConf.create()
    for parent in data.pop("defaults", []):
        if parent == "_self_":
            continue
        parent_path = path.parent / f"{parent}.yaml"
        if not parent_path.is_file():
            raise ConfigError(f"'defaults' names {parent!r}, which does not exist", path=path)
        merged = OmegaConf.merge(merged, _load_with_defaults(parent_path, (*seen, path)))
    return OmegaConf.merge(merged, OmegaConf.create(data))


def _validate(config: DictConfig, path: Path) -> None:
    def check(condition: bool, reason: str) -> None:
        if not condition:
            raise ConfigError(reason, path=path)

    check(
        config.scaling.method in {"robust_zscore", "fixed", "train_split"},
        "scaling.method must be robust_zscore, fixed or train_split, not "
        f"{config.scaling.method!r}",
    )
    check(
        config.scaling.per in {"channel", "recording"},
        f"scaling.per must be channel or recording, not {config.scaling.per!r}",
    )
    check(
        config.windows.mode in {"sliding", "events"},
        f"windows.mode must be sliding or events, not {config.windows.mode!r}",
    )
    check(
        config.artifacts.bad_channels in {"interpolate", "mask"},
        f"artifacts.bad_channels must be interpolate or mask, not "
        f"{config.artifacts.bad_channels!r}",
    )
    check(
        config.notch.line_freq in {None, "auto", 50, 60},
        f"notch.line_freq must be 50, 60, auto or null, not {config.notch.line_freq!r}",
    )
    check(
        config.dtype in {"float32", "float16"},
        f"dtype must be float32 or float16, not {config.dtype!r}",
    )
    if config.windows.mode == "sliding":
        check(
            config.windows.length_s > 0 and config.windows.stride_s > 0,
            "windows.length_s and windows.stride_s must be positive",
        )
    else:
        check(config.windows.tmax > config.windows.tmin, "windows.tmax must exceed windows.tmin")
    band = config.bandpass
    if band.l_freq is not None and band.h_freq is not None:
        check(band.l_freq < band.h_freq, "bandpass.l_freq must be below bandpass.h_freq")


def config_dict(config: DictConfig) -> dict[str, Any]:
    """A plain, JSON-serialisable copy of a config."""
    return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]


# --------------------------------------------------------------------------- steps


def pick_types(recording: Recording, types: list[str]) -> Recording:
    """Keep only channels whose MNE type is in ``types``."""
    keep = [i for i, t in enumerate(recording.ch_types) if t in set(types)]
    if not keep:
        raise PreprocessingError(
            f"no channel of type {', '.join(types)} (types found: "
            f"{', '.join(sorted(set(recording.ch_types)))})",
            path=recording.source,
            hint="set channels.types in the preprocessing config",
        )
    if len(keep) == recording.n_chans:
        return recording
    return _select(recording, keep)


def _select(recording: Recording, index: list[int]) -> Recording:
    pos = None if recording.ch_pos is None else recording.ch_pos[index]
    return dataclasses.replace(
        recording,
        signal=recording.signal[index],
        ch_names=[recording.ch_names[i] for i in index],
        ch_types=[recording.ch_types[i] for i in index],
        ch_pos=pos,
    )


def harmonise_channels(
    recording: Recording, target: list[str] | str
) -> tuple[Recording, np.ndarray]:
    """Map a recording onto ``target`` channels; return it and the mask of present channels.

    ``target`` is a list of names or a preset of :mod:`neurodecode.data.montage`
    (``szcore_19``, ``double_banana``); see :func:`neurodecode.data.montage.harmonise`.
    """
    target = target if isinstance(target, str) else list(target)
    harmonised, mask = montage.harmonise(recording, target)
    return harmonised, np.asarray(mask, dtype=bool)


def resample(recording: Recording, sfreq: float) -> Recording:
    """Resample to ``sfreq`` Hz in the frequency domain (see :func:`resample_filter`)."""
    return resample_filter(recording, sfreq, None)


def line_frequencies(
    line_freq: float | None, sfreq: float, harmonics: bool, width: float
) -> list[float]:
    """The line frequency and (optionally) its harmonics that fit below Nyquist."""
    if not line_freq:
        return []
    nyquist = sfreq / 2
    freqs = [float(line_freq)]
    if harmonics:
        freqs = [float(line_freq) * k for k in range(1, int(nyquist // line_freq) + 1)]
    return [f for f in freqs if f + width / 2 + 1.0 < nyquist]


def check_band(
    recording: Recording, l_freq: float | None, h_freq: float | None, target_sfreq: float | None
) -> None:
    """Refuse a band-pass edge at or above the Nyquist frequency (before or after resampling)."""
    for rate, what in ((recording.sfreq, "recording"), (target_sfreq, "resampled signal")):
        if rate is None:
            continue
        for edge, name in ((h_freq, "bandpass.h_freq"), (l_freq, "bandpass.l_freq")):
            if edge is not None and edge >= rate / 2:
                raise PreprocessingError(
                    f"{name}={edge} Hz is at or above the Nyquist frequency {rate / 2:g} Hz of "
                    f"the {what} ({rate:g} Hz)",
                    path=recording.source,
                    hint="lower the band-pass edge or raise `resample`",
                )


def bandpass_notch(
    recording: Recording,
    l_freq: float | None,
    h_freq: float | None,
    notch_freqs: list[float],
    notch_width: float = 1.0,
) -> Recording:
    """Zero-phase FIR band-pass and band-stop at ``notch_freqs``, in one filtering pass.

    The kernel comes from :func:`design_filter`; it is applied by :func:`resample_filter`.
    """
    kernel = design_filter(recording.sfreq, l_freq, h_freq, tuple(notch_freqs), notch_width)
    return resample_filter(recording, None, kernel)


def resample_filter(
    recording: Recording, sfreq: float | None, kernel: np.ndarray | None
) -> Recording:
    """Resample to ``sfreq`` and apply a zero-phase FIR ``kernel``, in one FFT pair.

    The signal is padded by odd reflection (at least half the kernel), transformed once,
    its spectrum truncated or zero-extended to the new rate (the FFT resampling of MNE and
    ``scipy.signal.resample``) and multiplied by the kernel's zero-phase frequency response,
    which equals linear convolution with the symmetric kernel; then transformed back and
    cropped. All channels at once, in float32.

    Parameters
    ----------
    recording : Recording
    sfreq : float or None
        New rate; None keeps the rate.
    kernel : numpy.ndarray or None
        Odd-length symmetric FIR kernel designed for the **new** rate (:func:`design_filter`);
        None only resamples.
    """
    new_sfreq = recording.sfreq if sfreq is None else float(sfreq)
    same_rate = abs(new_sfreq - recording.sfreq) <= 1e-8 + 1e-5 * abs(recording.sfreq)  # np.isclose
    if kernel is None and same_rate:
        return recording
    data = recording.signal.astype(np.float32, copy=False)
    n_in = data.shape[1]
    fraction = Fraction(new_sfreq / recording.sfreq).limit_denominator(1000)
    exact = same_rate or abs(float(fraction) * recording.sfreq - new_sfreq) < 1e-9 * new_sfreq
    step = fraction.denominator if exact and not same_rate else 1
    half = 0 if kernel is None else len(kernel) // 2
    pad = int(np.ceil(half * recording.sfreq / new_sfreq)) + 8
    m_in = n_in + 2 * pad
    m_in += -m_in % step
    while sp_fft.next_fast_len(m_in, real=True) != m_in:
        m_in += step
    padded = _pad_reflect(data, pad, m_in - n_in - pad)
    if same_rate:
        m_out = m_in
    elif exact:
        m_out = m_in * fraction.numerator // fraction.denominator
    else:
        m_out = int(round(m_in * new_sfreq / recording.sfreq))
    spectrum = sp_fft.rfft(padded, axis=1)
    del padded
    n_bins = m_out // 2 + 1
    if n_bins <= spectrum.shape[1]:
        spectrum = spectrum[:, :n_bins]
    else:
        spectrum = np.pad(spectrum, ((0, 0), (0, n_bins - spectrum.shape[1])))
    kernel_bytes = None if kernel is None else np.asarray(kernel, dtype=np.float64).tobytes()
    spectrum *= _spectral_gain(kernel_bytes, m_in, m_out)
    out = sp_fft.irfft(spectrum, n=m_out, axis=1, overwrite_x=True)
    start = int(round(pad * new_sfreq / recording.sfreq))
    n_out = int(round(n_in * new_sfreq / recording.sfreq))
    return dataclasses.replace(recording, signal=_crop_in_place(out, start, n_out), sfreq=new_sfreq)


def _crop_in_place(data: np.ndarray, start: int, length: int) -> np.ndarray:
    """``data[:, start : start + length]`` (cut at ``data``'s end, as slicing is) in place.

    The result is C-contiguous and shares ``data``'s buffer.

    Each row moves down to its place in the flat buffer (a destination never lies after its
    source, and NumPy copies overlapping slices correctly), so no second array is allocated:
    on a busy machine the page faults of a fresh multi-megabyte array cost more than the copy.
    """
    length = min(length, data.shape[1] - start)
    flat = data.reshape(-1)
    for row in range(data.shape[0]):
        flat[row * length : (row + 1) * length] = data[row, start : start + length]
    return flat[: data.shape[0] * length].reshape(data.shape[0], length)


@lru_cache(maxsize=4)  # a few lengths: memory stays a small fraction of one recording's
def _spectral_gain(kernel_bytes: bytes | None, m_in: int, m_out: int) -> np.ndarray:
    """Per-bin float32 gain of :func:`resample_filter`, computed once per kernel and length.

    The FFT length ratio times the kernel's zero-phase response (``kernel_bytes``: the float64
    kernel, or None for no filter). Read-only: recordings of one dataset share their lengths,
    so the kernel is transformed once per length instead of once per recording.
    """
    gain = np.full(m_out // 2 + 1, m_out / m_in, dtype=np.float32)
    if kernel_bytes is not None:
        gain *= _zero_phase_response(np.frombuffer(kernel_bytes, dtype=np.float64), m_out)
    gain.flags.writeable = False
    return gain


def _zero_phase_response(kernel: np.ndarray, n: int) -> np.ndarray:
    """Real frequency response (``n // 2 + 1`` bins) of a symmetric kernel centred at 0."""
    half = len(kernel) // 2
    centred = np.zeros(n)
    centred[: half + 1] = kernel[half:]
    centred[n - half :] = kernel[:half]
    return sp_fft.rfft(centred).real.astype(np.float32)


@lru_cache(maxsize=32)
def design_filter(
    sfreq: float,
    l_freq: float | None,
    h_freq: float | None,
    notch_freqs: tuple[float, ...],
    notch_width: float,
) -> np.ndarray | None:
    """Odd-length linear-phase FIR kernel (Hamming) for band-pass plus notches, or None."""
    nyquist = sfreq / 2
    kernels = []
    if l_freq is not None or h_freq is not None:
        transitions, cutoffs = [], []
        if l_freq is not None:
            l_trans = min(max(0.25 * l_freq, 2.0), l_freq)
            transitions.append(l_trans)
            cutoffs.append(l_freq - l_trans / 2)
        if h_freq is not None:
            h_trans = min(max(0.25 * h_freq, 2.0), nyquist - h_freq)
            transitions.append(h_trans)
            cutoffs.append(h_freq + h_trans / 2)
        numtaps = _odd(3.3 / min(transitions) * sfreq)
        kernels.append(sps.firwin(numtaps, cutoffs, pass_zero=l_freq is None, fs=sfreq))
    if notch_freqs:
        trans = 1.0
        edges = []
        for f in notch_freqs:
            edges += [f - notch_width / 2 - trans / 2, f + notch_width / 2 + trans / 2]
        kernels.append(sps.firwin(_odd(3.3 / trans * sfreq), edges, pass_zero=True, fs=sfreq))
    if not kernels:
        return None
    kernel = kernels[0]
    for other in kernels[1:]:
        kernel = np.convolve(kernel, other)
    return kernel


def _odd(n: float) -> int:
    n = int(np.ceil(n))
    return n + 1 if n % 2 == 0 else n


def _pad_reflect(data: np.ndarray, left: int, right: int) -> np.ndarray:
    """Pad by odd reflection about the end samples; beyond one signal length, the end value.

    Written into one preallocated array (no per-piece temporaries and concatenation).
    """
    n_chans, n_times = data.shape
    k_left, k_right = min(left, n_times - 1), min(right, n_times - 1)
    out = np.empty((n_chans, left + n_times + right), dtype=data.dtype)
    body = slice(left, left + n_times)
    out[:, body] = data
    first, last = 2 * data[:, :1], 2 * data[:, -1:]
    np.subtract(first, data[:, k_left:0:-1], out=out[:, left - k_left : left])
    np.subtract(last, data[:, -2 : -k_right - 2 : -1], out=out[:, body.stop : body.stop + k_right])
    # beyond one signal length: repeat the outermost reflected sample
    out[:, : left - k_left] = out[:, left - k_left : left - k_left + 1]
    out[:, body.stop + k_right :] = out[:, body.stop + k_right - 1 : body.stop + k_right]
    return out


def _to_microvolts(signal: np.ndarray, given: np.ndarray) -> np.ndarray:
    """``signal`` (volts) in µV, float32; in place when it is a fresh copy, not ``given``'s data.

    Channel selection and harmonisation usually copy the signal already; scaling that copy in
    place saves one more array of the recording's size (and its page faults).
    """
    if signal.dtype == np.float32 and not np.may_share_memory(signal, given):
        return np.multiply(signal, UV, out=signal)
    return (signal * UV).astype(np.float32, copy=False)


def rereference(recording: Recording, reference: str | None, good: np.ndarray) -> Recording:
    """Average reference over ``good`` channels, a named reference channel, or nothing."""
    if reference is None:
        return recording
    data = recording.signal
    if reference == "average":
        if good.sum() < 2:
            raise PreprocessingError(
                f"average reference needs at least 2 good channels, found {int(good.sum())}",
                path=recording.source,
                hint="set reference=null for single-channel or bipolar data",
            )
        ref = data[good].mean(axis=0, keepdims=True)
    else:
        if reference not in recording.ch_names:
            raise PreprocessingError(
                f"reference channel {reference!r} is not in the recording",
                path=recording.source,
            )
        ref = data[recording.ch_names.index(reference)][None, :]
    out = data - ref
    out[~good] = 0.0
    return dataclasses.replace(recording, signal=out.astype(np.float32, copy=False))


def scale_signal(
    signal_uv: np.ndarray, good: np.ndarray, method: str, per: str, scale_uv: float
) -> np.ndarray:
    """Scale a µV signal: ``fixed`` (µV / scale_uv) or robust z-score per channel/recording.

    Robust z-score: ``(x - median) / (IQR / 1.349)`` with statistics over good channels only;
    masked channels stay at zero.
    """
    if method == "fixed":
        out = signal_uv / np.float32(scale_uv)
    else:
        data = signal_uv[good]
        axis = 1 if per == "channel" else None
        q25, median, q75 = np.percentile(data, [25, 50, 75], axis=axis, keepdims=True)
        spread = (q75 - q25) / 1.349
        spread = np.where(spread > 0, spread, 1.0)
        out = np.zeros_like(signal_uv)
        out[good] = (data - median) / spread
    out[~good] = 0.0
    return out.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- chain


@dataclasses.dataclass
class Prepared:
    """A preprocessed recording in µV plus what later stages need from the QC pass.

    Attributes
    ----------
    recording : Recording
        Filtered, re-referenced signal; **µV** (float32), target channels, target rate.
    ch_mask : numpy.ndarray
        Bool per channel: True where the channel carries data (present and not masked).
    plateau_cumsum : numpy.ndarray or None
        ``(n_chans, n_raw + 1)`` cumulative count of flat-topped raw samples (for window
        rejection), at ``raw_sfreq``.
    raw_sfreq : float
        Sampling rate of the raw recording.
    raw_good : numpy.ndarray
        Bool per channel: present and not bad (interpolated channels excluded), i.e. the
        channels whose raw samples the window checks may trust.
    """

    recording: Recording
    ch_mask: np.ndarray
    plateau_cumsum: np.ndarray | None
    raw_sfreq: float
    raw_good: np.ndarray


def preprocess_recording(
    recording: Recording,
    config: DictConfig,
    qc: artifacts.RecordingQC,
    target: list[str] | str | None = None,
) -> Prepared:
    """Run the channel-level pipeline of ``config`` on one recording.

    Order: channel types → harmonise to ``target`` → raw-signal checks (flat channels,
    line noise, flat-topped samples) → resample → band-pass + notch → noisy channels (robust
    deviation, correlation) → interpolate or mask bad channels → re-reference. Scaling and
    window rejection come after windowing (see :mod:`neurodecode.data.transform`).

    Parameters
    ----------
    recording : Recording
        As read, in volts.
    config : DictConfig
        A preprocessing config (:func:`load_preprocess_config`).
    qc : artifacts.RecordingQC
        Filled in with every decision (bad channels and why, line noise, notes).
    target : list of str or str, optional
        Channel set to harmonise to (overrides ``config.channels.target``).

    Raises
    ------
    PreprocessingError
        Rate below the band-pass edge, all channels bad, no channel of the wanted type, ...
    """
    art = config.artifacts
    given = recording.signal
    recording = pick_types(recording, list(config.channels.types))
    target = target if target is not None else config.channels.target
    if target is not None:
        recording, present = harmonise_channels(recording, target)
        qc.missing_channels = [n for n, p in zip(recording.ch_names, present, strict=True) if not p]
    else:
        present = np.ones(recording.n_chans, dtype=bool)
    qc.n_channels = recording.n_chans
    check_band(recording, config.bandpass.l_freq, config.bandpass.h_freq, config.resample)

    raw_uv = _to_microvolts(recording.signal, given)
    raw_sfreq = recording.sfreq
    plateau_cumsum, qc.notch_freq = _raw_checks(raw_uv, recording, present, config, qc)
    work = _resample_and_filter(
        dataclasses.replace(recording, signal=raw_uv), config, qc.notch_freq
    )
    work, mask, good = _bad_channels(work, present, art, qc, recording.source)
    work = rereference(work, config.reference, mask)
    return Prepared(
        recording=work,
        ch_mask=mask,
        plateau_cumsum=plateau_cumsum,
        raw_sfreq=raw_sfreq,
        raw_good=good,
    )


def _raw_checks(
    raw_uv: np.ndarray,
    recording: Recording,
    present: np.ndarray,
    config: DictConfig,
    qc: artifacts.RecordingQC,
) -> tuple[np.ndarray | None, Any]:
    """Flat, flat-topped and line-noise checks on the raw µV signal.

    Returns the cumulative plateau counts (for window rejection; None with artifact checks
    off) and the line frequency to notch (``notch.line_freq``, detected when ``"auto"``).
    """
    art = config.artifacts
    line_freq = config.notch.line_freq
    if not art.enabled:
        if line_freq == "auto":
            line_freq = artifacts.detect_line_frequency(
                raw_uv[present], recording.sfreq, art.line_noise.detect_db
            )
        return None, line_freq
    artifacts.flag_flat_channels(raw_uv, recording.ch_names, present, art.flat_std_uv, qc)
    plateau = artifacts.plateau_mask(
        raw_uv, max(3, int(round(art.plateau_min_run_s * recording.sfreq)))
    )
    artifacts.flag_clipped_channels(
        plateau, recording.ch_names, present, art.clipped_channel_fraction, qc
    )
    plateau_cumsum = np.concatenate(
        [np.zeros((plateau.shape[0], 1), np.int32), np.cumsum(plateau, axis=1, dtype=np.int32)],
        axis=1,
    )
    detected = artifacts.assess_line_noise(
        raw_uv, recording.sfreq, recording.ch_names, present, art.line_noise, qc
    )
    return plateau_cumsum, detected if line_freq == "auto" else line_freq


def _resample_and_filter(work: Recording, config: DictConfig, line_freq: Any) -> Recording:
    """Resample, band-pass and notch ``work`` in one FFT pair."""
    new_sfreq = work.sfreq if config.resample is None else float(config.resample)
    notch_freqs = line_frequencies(line_freq, new_sfreq, config.notch.harmonics, config.notch.width)
    kernel = design_filter(
        new_sfreq,
        config.bandpass.l_freq,
        config.bandpass.h_freq,
        tuple(notch_freqs),
        config.notch.width,
    )
    return resample_filter(work, new_sfreq, kernel)


def _bad_channels(
    work: Recording, present: np.ndarray, art: DictConfig, qc: artifacts.RecordingQC, source: Any
) -> tuple[Recording, np.ndarray, np.ndarray]:
    """Flag noisy channels, refuse too many bad ones, interpolate or mask the rest.

    Returns the recording (bad channels interpolated where configured), the channel mask
    (True where the channel carries data) and the good channels before interpolation.
    """
    good = present & ~np.isin(work.ch_names, list(qc.bad_channels))
    if art.enabled:
        artifacts.flag_noisy_channels(work.signal, work.sfreq, work.ch_names, good, art, qc)
        good = present & ~np.isin(work.ch_names, list(qc.bad_channels))
    n_bad = int(present.sum() - good.sum())
    if good.sum() == 0:
        raise PreprocessingError(
            f"all {int(present.sum())} channels are bad ({qc.bad_reason_summary()})", path=source
        )
    if n_bad > art.max_bad_fraction * present.sum():
        raise PreprocessingError(
            f"{n_bad} of {int(present.sum())} channels are bad, more than "
            f"artifacts.max_bad_fraction={art.max_bad_fraction} ({qc.bad_reason_summary()})",
            path=source,
        )
    mask = good.copy()
    bad_present = present & ~good
    if bad_present.any():
        if art.bad_channels == "interpolate":
            work, interpolated = artifacts.interpolate_bad_channels(work, bad_present, good)
            mask |= interpolated
            qc.interpolated = [n for n, i in zip(work.ch_names, interpolated, strict=True) if i]
        qc.masked = [
            n for n, b, m in zip(work.ch_names, bad_present, mask, strict=True) if b and not m
        ]
    return work, mask, good
