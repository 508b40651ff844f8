"""Simulated EEG datasets written as real EDF+ files in a BIDS layout.

**This is simulation, never a benchmark.** The signals are generated from simple,
documented models so that the whole pipeline (readers, preprocessing, windows, training,
scoring) can run offline and in seconds; a score on them says that the code works, not how
well a method decodes real brains. ``dataset_description.json`` says so as well.

Three tasks, each deterministic given ``seed`` (a recording depends only on the seed and on
its subject/session/run numbers, not on how many others are generated):

``seizure``
    SzCORE's 19 referential channels (10-20 names, common average, labels ``Fp1-Avg`` ...)
    at 256 Hz. Background: spatially correlated 1/f noise, posterior alpha, eye blinks
    (frontal), muscle bursts (temporal), a little line noise, and non-ictal look-alikes:
    isolated interictal spikes at the focus and fronto-central theta bursts. Seizures: rhythmic
    discharges whose frequency glides down (e.g. 8 → 3 Hz) while their amplitude grows,
    starting at a subject-specific focus and spreading to neighbouring electrodes,
    followed by post-ictal attenuation. Onsets and durations go to an SzCORE
    ``*_events.tsv`` (``eventType`` ``sz``) and to the EDF+ annotations.
``motor_imagery``
    64 channels (eegmmidb layout; any 10-05 set via ``channels``) at 160 Hz. Cued
    left/right-hand imagery (EDF+ annotations ``left_hand`` / ``right_hand``, with ``rest``
    between trials) desynchronises the mu (8-12 Hz) and beta (18-26 Hz) rhythms over the
    contralateral sensorimotor cortex (C4 for the left hand, C3 for the right hand), by a
    subject-specific depth that varies from trial to trial.
``retrieval``
    17 posterior channels at 250 Hz. Each image presentation (annotation ``concept_017``;
    ``value`` 17 in the events TSV) evokes a response produced from the image's embedding
    by a fixed linear spatio-temporal forward model, plus a generic visual evoked response
    and background noise. Embeddings come from an ``.npy`` file (e.g. CLIP features) or
    are a seeded random unit-norm matrix; they are copied to
    ``stimuli/image_embeddings.npy`` (row ``i`` is concept ``i``).

Layout: ``sub-XX/ses-YY/eeg/sub-XX_ses-YY_task-<task>_run-ZZ_eeg.edf`` with ``_events.tsv``,
``_channels.tsv`` and ``_eeg.json`` sidecars, plus ``dataset_description.json``,
``participants.tsv`` and ``README`` at the root. Samples are stored in µV (EDF physical
dimension ``uV``), so MNE-based readers return volts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode import __version__
from neurodecode.data.annotations import write_szcore_events
from neurodecode.data.montage import SZCORE_19, channel_positions
from neurodecode.errors import ConfigError
from neurodecode.jsonio import jsonable

logger = logging.getLogger(__name__)

TASKS = ("seizure", "motor_imagery", "retrieval")

# BIDS task labels (alphanumeric, as BIDS requires); szMonitoring is SzCORE's.
_BIDS_TASK = {"seizure": "szMonitoring", "motor_imagery": "motorImagery", "retrieval": "rsvp"}

# The 64 electrodes of PhysioNet's eegmmidb (BCI2000 cap), modern 10-10 names.
_EEGMMIDB_64 = (
    "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "C5", "C3", "C1", "Cz", "C2", "C4",
    "C6", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "Fp1", "Fpz", "Fp2", "AF7", "AF3",
    "AFz", "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "FT7", "FT8",
    "T7", "T8", "T9", "T10", "TP7", "TP8", "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6",
    "P8", "PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2", "Iz",
)  # fmt: skip
# The 17 occipito-parietal channels used by THINGS-EEG2 decoding work.
_POSTERIOR_17 = (
    "Pz", "P3", "P7", "O1", "Oz", "O2", "P4", "P8", "P1", "P2",
    "P5", "P6", "PO7", "PO3", "POz", "PO4", "PO8",
)  # fmt: skip

_START = dt.datetime(2000, 1, 1, 8, 0, 0)  # fixed so that files are byte-identical
_PHYSICAL_LIMIT_UV = 2000.0  # EDF physical range ±2 mV: 0.06 µV resolution on 16 bits


@dataclass(frozen=True)
class SimulationParams:
    """What to generate. Defaults depend on ``task`` (see :data:`TASK_DEFAULTS`).

    Parameters
    ----------
    task : {"seizure", "motor_imagery", "retrieval"}
    seed : int
        Everything is a deterministic function of the seed.
    n_subjects, n_sessions, n_runs : int
        Recordings are ``n_subjects × n_sessions × n_runs``.
    sfreq : float
        Sampling rate in Hz.
    channels : tuple of str or None
        Electrode names (10-05 system); ``None`` picks the task's default set.
    duration_s : float
        Seizure recordings' length.
    seizures_per_run : (int, int)
        Inclusive range of the number of seizures in a seizure recording.
    seizure_duration_s : (float, float)
        Range of a seizure's duration.
    ictal_freq_hz : (float, float)
        Discharge frequency at onset and at the end (it glides exponentially).
    line_freq : float
        Power-line frequency of the small line-noise component (0 for none).
    trials_per_run : int
        Motor-imagery trials per run (half left, half right hand).
    embeddings : str or None
        Retrieval: ``.npy`` file of image embeddings, one row (or ``(1, dim)`` block) per
        concept; ``None`` draws ``n_concepts × embedding_dim`` random unit vectors.
    n_concepts, embedding_dim : int
        Size of the random embedding matrix (ignored when ``embeddings`` is given).
    repetitions_per_run : int
        Retrieval: presentations of every concept in each run.
    soa_s : float
        Retrieval: time between image onsets.
    """

    task: str = "seizure"
    seed: int = 0
    n_subjects: int = 4
    n_sessions: int = 1
    n_runs: int = 2
    sfreq: float = 256.0
    channels: tuple[str, ...] | None = None
    duration_s: float = 240.0
    seizures_per_run: tuple[int, int] = (1, 2)
    seizure_duration_s: tuple[float, float] = (20.0, 40.0)
    ictal_freq_hz: tuple[float, float] = (8.0, 3.0)
    line_freq: float = 50.0
    trials_per_run: int = 30
    embeddings: str | None = None
    n_concepts: int = 200
    embedding_dim: int = 768
    repetitions_per_run: int = 2
    soa_s: float = 0.6

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"unknown simulated task {self.task!r}; expected one of {TASKS}")
        for name in ("n_subjects", "n_sessions", "n_runs"):
            if not 1 <= getattr(self, name) <= 99:
                raise ConfigError(f"simulation parameter {name} must be between 1 and 99")
        if self.sfreq < 2 * 45 or self.sfreq != int(self.sfreq):
            raise ConfigError(
                f"simulation sfreq {self.sfreq} Hz must be a whole number of at least 90 Hz",
                hint="EDF stores whole 1-s records",
            )
        if self.duration_s != int(self.duration_s):
            raise ConfigError(f"simulation duration_s {self.duration_s} must be whole seconds")
        if self.task == "seizure":
            lo, hi = self.seizures_per_run
            longest = hi * (self.seizure_duration_s[1] + _SEIZURE_GAP_S) + 2 * _SEIZURE_MARGIN_S
            if not 0 <= lo <= hi or longest > self.duration_s:
                raise ConfigError(
                    f"{hi} seizures of up to {self.seizure_duration_s[1]} s do not fit in "
                    f"{self.duration_s} s recordings",
                    hint="lengthen duration_s or lower seizures_per_run",
                )
        if self.task == "motor_imagery" and (self.trials_per_run < 2 or self.trials_per_run % 2):
            raise ConfigError("trials_per_run must be an even number ≥ 2 (half left, half right)")

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Electrode names of every recording."""
        if self.channels is not None:
            return tuple(self.channels)
        return {"seizure": SZCORE_19, "motor_imagery": _EEGMMIDB_64, "retrieval": _POSTERIOR_17}[
            self.task
        ]

    def digest(self) -> str:
        """Short hash identifying the generated content."""
        text = json.dumps(jsonable(asdict(self)), sort_keys=True)
        return hashlib.sha256(f"{_GENERATOR_VERSION}:{text}".encode()).hexdigest()[:16]


# Bumped whenever the generator's output changes for the same parameters.
_GENERATOR_VERSION = 3
_SEIZURE_MARGIN_S = 20.0  # no seizure in the first/last 20 s
_SEIZURE_GAP_S = 40.0  # inter-ictal gap (covers post-ictal attenuation)

TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "seizure": {},
    "motor_imagery": {
        "n_subjects": 4,
        "n_sessions": 2,
        "n_runs": 2,
        "sfreq": 160.0,
        "line_freq": 60.0,
    },
    "retrieval": {"n_subjects": 2, "n_sessions": 1, "n_runs": 2, "sfreq": 250.0},
}


def simulation_params(params: Mapping[str, Any] | SimulationParams) -> SimulationParams:
    """Build validated :class:`SimulationParams` from a mapping (task defaults filled in).

    Raises
    ------
    ConfigError
        On unknown keys or invalid values.
    """
    if isinstance(params, SimulationParams):
        return params
    params = dict(params)
    known = {f.name for f in fields(SimulationParams)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(
            f"unknown simulation parameter(s) {unknown}", hint=f"valid: {sorted(known)}"
        )
    task = params.get("task", "seizure")
    merged = {**TASK_DEFAULTS.get(task, {}), **params}
    for key in ("seizures_per_run", "seizure_duration_s", "ictal_freq_hz", "channels"):
        if merged.get(key) is not None:
            merged[key] = tuple(merged[key])
    return SimulationParams(**merged)


def generate_dataset(root: Path, manifest: Any) -> None:
    """Write a simulated dataset under ``root``, atomically and only if not already there.

    Parameters
    ----------
    root : pathlib.Path
        Dataset folder to create (or to leave alone if it already holds the same content).
    manifest : Manifest or mapping
        A manifest whose ``source`` (kind ``generated``) carries the generator parameters
        in ``generator_params``, or those parameters as a plain mapping (see
        :class:`SimulationParams`).
    """
    params = simulation_params(_params_from_manifest(manifest))
    root = Path(root)
    if _is_complete(root, params):
        logger.info("simulated dataset already present in %s", root)
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.with_name(f".{root.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _write_dataset(partial, params)
        _replace_directory(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    logger.info("wrote simulated %s dataset (%s) to %s", params.task, params.digest(), root)


def _params_from_manifest(manifest: Any) -> Mapping[str, Any]:
    if isinstance(manifest, Mapping):  # a plain mapping of parameters
        return manifest
    return manifest.source.generator_params


def _is_complete(root: Path, params: SimulationParams) -> bool:
    try:
        description = json.loads((root / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return False
    return description.get("neurodecode_simulation", {}).get("digest") == params.digest()


def _replace_directory(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``; an old ``target`` is removed only once ``new`` is in place."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- writing


def _write_dataset(root: Path, params: SimulationParams) -> None:
    root.mkdir(parents=True)
    simulate = {
        "seizure": simulate_seizure_recording,
        "motor_imagery": simulate_motor_imagery_recording,
        "retrieval": simulate_retrieval_recording,
    }[params.task]
    embeddings = load_embeddings(params) if params.task == "retrieval" else None
    if embeddings is not None:
        (root / "stimuli").mkdir()
        np.save(root / "stimuli" / "image_embeddings.npy", embeddings)
    for subject in range(1, params.n_subjects + 1):
        for session in range(1, params.n_sessions + 1):
            for run in range(1, params.n_runs + 1):
                extra = {"embeddings": embeddings} if embeddings is not None else {}
                signal_uv, events = simulate(params, subject, session, run, **extra)
                _write_recording(root, params, subject, session, run, signal_uv, events)
    _write_dataset_files(root, params)


def recording_stem(params: SimulationParams, subject: int, session: int, run: int) -> str:
    """BIDS file-name stem, e.g. ``sub-01_ses-01_task-szMonitoring_run-01``."""
    task = _BIDS_TASK[params.task]
    return f"sub-{subject:02d}_ses-{session:02d}_task-{task}_run-{run:02d}"


def _write_recording(
    root: Path,
    params: SimulationParams,
    subject: int,
    session: int,
    run: int,
    signal_uv: np.ndarray,
    events: pd.DataFrame,
) -> None:
    import edfio

    folder = root / f"sub-{subject:02d}" / f"ses-{session:02d}" / "eeg"
    folder.mkdir(parents=True, exist_ok=True)
    stem = recording_stem(params, subject, session, run)
    labels = _edf_labels(params)
    start = _START + dt.timedelta(days=session - 1, hours=run - 1)
    clipped = np.clip(signal_uv, -_PHYSICAL_LIMIT_UV, _PHYSICAL_LIMIT_UV)
    signals = [
        edfio.EdfSignal(
            clipped[i].astype(np.float64),
            params.sfreq,
            label=label,
            transducer_type="AgAgCl electrode",
            physical_dimension="uV",
            physical_range=(-_PHYSICAL_LIMIT_UV, _PHYSICAL_LIMIT_UV),
        )
        for i, label in enumerate(labels)
    ]
    annotations = [
        edfio.EdfAnnotation(float(e.onset), float(e.duration), str(e.description))
        for e in events.itertuples()
    ]
    edf = edfio.Edf(
        signals,
        patient=edfio.Patient(code=f"sub-{subject:02d}"),
        recording=edfio.Recording(startdate=start.date(), additional=("simulated",)),
        starttime=start.time(),
        data_record_duration=1.0,
        annotations=annotations,
    )
    edf.write(folder / f"{stem}_eeg.edf")
    duration = signal_uv.shape[1] / params.sfreq
    _write_events(folder / f"{stem}_events.tsv", params, events, duration, start)
    pd.DataFrame(
        {
            "name": labels,
            "type": "EEG",
            "units": "uV",
            "sampling_frequency": params.sfreq,
            "status": "good",
        }
    ).to_csv(folder / f"{stem}_channels.tsv", sep="\t", index=False)
    sidecar = {
        "TaskName": _BIDS_TASK[params.task],
        "SamplingFrequency": params.sfreq,
        "EEGChannelCount": len(labels),
        "EEGReference": "average" if params.task == "seizure" else "simulated (none)",
        "PowerLineFrequency": params.line_freq or "n/a",
        "RecordingDuration": duration,
        "SoftwareFilters": "n/a",
        "Description": "SIMULATED EEG generated by neurodecode.data.simulated",
    }
    (folder / f"{stem}_eeg.json").write_text(json.dumps(sidecar, indent=2) + "\n")


def _edf_labels(params: SimulationParams) -> list[str]:
    names = params.channel_names
    return [f"{n}-Avg" for n in names] if params.task == "seizure" else list(names)


def _write_events(
    path: Path,
    params: SimulationParams,
    events: pd.DataFrame,
    duration: float,
    start: dt.datetime,
) -> None:
    if params.task == "seizure":
        write_szcore_events(path, events, recording_duration=duration, date_time=start)
        return
    table = pd.DataFrame(
        {
            "onset": events["onset"].to_numpy(float),
            "duration": events["duration"].to_numpy(float),
            "trial_type": events["description"],
            "value": events["value"],
        }
    )
    table.to_csv(path, sep="\t", index=False, float_format="%.4f")


def _write_dataset_files(root: Path, params: SimulationParams) -> None:
    description = {
        "Name": f"neurodecode simulated {params.task} EEG",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["neurodecode developers"],
        "GeneratedBy": [
            {
                "Name": "neurodecode.data.simulated",
                "Version": __version__,
                "Description": "SIMULATION: synthetic EEG from documented generative models. "
                "Use it to check that code runs, never as a benchmark of decoding accuracy.",
            }
        ],
        "neurodecode_simulation": {
            "digest": params.digest(),
            "generator_version": _GENERATOR_VERSION,
            "params": jsonable(asdict(params)),
        },
    }
    (root / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    pd.DataFrame(
        {"participant_id": [f"sub-{s:02d}" for s in range(1, params.n_subjects + 1)]}
    ).to_csv(root / "participants.tsv", sep="\t", index=False)
    (root / "README").write_text(
        "SIMULATED EEG generated by neurodecode.data.simulated; not recorded from anyone.\n"
        "It exists so that the pipeline can be run and tested offline. Results on it are\n"
        "checks that the code works, never benchmark results.\n"
    )


# --------------------------------------------------------------------------- signal models


def _rng(params: SimulationParams, *ids: int) -> np.random.Generator:
    """Generator for one (subject[, session[, run]]) and purpose, independent of the others."""
    return np.random.default_rng(np.random.SeedSequence([params.seed, *ids]))


# Stream identifiers, so that e.g. a subject's traits never share draws with its noise.
_TRAITS, _SIGNAL, _FORWARD = 1, 2, 3


def _positions(names: tuple[str, ...]) -> np.ndarray:
    positions = channel_positions(names)
    unknown = [n for n, p in zip(names, positions, strict=True) if np.isnan(p).any()]
    if unknown:
        raise ConfigError(f"simulated channels {unknown} have no standard 10-05 position")
    return positions


def _coloured_noise(
    rng: np.random.Generator, n_chans: int, n_times: int, sfreq: float, exponent: float
) -> np.ndarray:
    """Unit-variance noise whose power falls as ``1 / f**exponent`` above 0.5 Hz."""
    spectrum = np.fft.rfft(rng.standard_normal((n_chans, n_times)), axis=1)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    spectrum *= np.maximum(freqs, 0.5) ** (-exponent / 2)
    spectrum[:, 0] = 0
    noise = np.fft.irfft(spectrum, n=n_times, axis=1)
    return noise / noise.std(axis=1, keepdims=True)


def _band_noise(
    rng: np.random.Generator,
    n_chans: int,
    n_times: int,
    sfreq: float,
    centre: float,
    width: float,
) -> np.ndarray:
    """Unit-variance narrow-band noise (a Gaussian band around ``centre`` Hz): waxing and
    waning oscillations like real alpha or mu rhythms."""
    spectrum = np.fft.rfft(rng.standard_normal((n_chans, n_times)), axis=1)
    freqs = np.fft.rfftfreq(n_times, 1 / sfreq)
    spectrum *= np.exp(-0.5 * ((freqs - centre) / width) ** 2)
    noise = np.fft.irfft(spectrum, n=n_times, axis=1)
    return noise / noise.std(axis=1, keepdims=True)


def _spatial_smoothing(positions: np.ndarray, width_m: float) -> np.ndarray:
    """Row-normalised Gaussian kernel over electrode distances (volume conduction)."""
    distance = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    kernel = np.exp(-0.5 * (distance / width_m) ** 2)
    return kernel / np.sqrt((kernel**2).sum(axis=1, keepdims=True))


def _proximity(positions: np.ndarray, centre: np.ndarray, width_m: float) -> np.ndarray:
    return np.exp(-0.5 * (np.linalg.norm(positions - centre, axis=1) / width_m) ** 2)


def _background(
    rng: np.random.Generator,
    positions: np.ndarray,
    n_times: int,
    sfreq: float,
    alpha_hz: float,
    line_freq: float,
) -> np.ndarray:
    """Resting background in µV: 1/f noise, posterior alpha, blinks, muscle, line noise."""
    n_chans = len(positions)
    mixing = _spatial_smoothing(positions, 0.045)
    signal = 18.0 * (mixing @ _coloured_noise(rng, n_chans, n_times, sfreq, 1.6))
    posterior = 1 / (1 + np.exp((positions[:, 1] + 0.06) / 0.015))  # y < -6 cm
    alpha = _band_noise(rng, 1, n_times, sfreq, alpha_hz, 0.7)
    signal += 14.0 * posterior[:, None] * alpha
    signal += _blinks(rng, positions, n_times, sfreq)
    signal += _muscle_bursts(rng, positions, n_times, sfreq)
    if line_freq:
        t = np.arange(n_times) / sfreq
        gain = 1.0 + 0.5 * rng.random(n_chans)
        signal += 1.5 * gain[:, None] * np.sin(2 * np.pi * line_freq * t + rng.uniform(0, 6.3))
    return signal


def _blinks(
    rng: np.random.Generator, positions: np.ndarray, n_times: int, sfreq: float
) -> np.ndarray:
    """Eye blinks: ~0.3 s positive deflections, strongest at Fp1/Fp2, about one per 5 s."""
    n_blinks = rng.poisson(n_times / sfreq / 5.0)
    trace = np.zeros(n_times)
    t = np.arange(int(0.8 * sfreq)) / sfreq
    for onset in rng.integers(0, max(1, n_times - len(t)), n_blinks):
        shape = rng.uniform(60, 140) * np.exp(-0.5 * ((t - 0.3) / 0.07) ** 2)
        trace[onset : onset + len(t)] += shape[: n_times - onset]
    frontal = np.exp((positions[:, 1] - positions[:, 1].max()) / 0.025)
    return frontal[:, None] * trace[None]


def _muscle_bursts(
    rng: np.random.Generator, positions: np.ndarray, n_times: int, sfreq: float
) -> np.ndarray:
    """Muscle artifacts: 0.5-2 s bursts of 20-100 Hz activity over one temporal region."""
    n_chans = len(positions)
    out = np.zeros((n_chans, n_times))
    n_bursts = rng.poisson(n_times / sfreq / 30.0)
    high = min(100.0, 0.45 * sfreq)
    for _ in range(n_bursts):
        length = int(rng.uniform(0.5, 2.0) * sfreq)
        onset = int(rng.integers(0, max(1, n_times - length)))
        side = rng.choice([-1.0, 1.0])
        centre = np.array([side * 0.08, -0.02, 0.0])  # over the temporalis muscle
        weight = _proximity(positions, centre, 0.035)
        noise = _band_noise(rng, 1, length, sfreq, (20 + high) / 2, (high - 20) / 2)[0]
        burst = rng.uniform(15, 40) * noise * np.hanning(length)
        out[:, onset : onset + length] += weight[:, None] * burst[None]
    return out


# --------------------------------------------------------------------------- seizure


def simulate_seizure_recording(
    params: SimulationParams, subject: int, session: int, run: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """One seizure-monitoring recording.

    Returns
    -------
    signal_uv : numpy.ndarray
        ``(n_chans, n_times)`` in µV.
    events : pandas.DataFrame
        One row per seizure: ``onset``, ``duration`` (s), ``description`` (``"sz"``),
        ``channels`` (comma-separated electrodes involved at onset).
    """
    names = params.channel_names
    positions = _positions(names)
    traits = _rng(params, subject, _TRAITS)
    alpha_hz = traits.uniform(8.5, 11.0)
    focus = int(traits.integers(len(names)))
    start_hz = params.ictal_freq_hz[0] * traits.uniform(0.85, 1.1)
    end_hz = params.ictal_freq_hz[1] * traits.uniform(0.85, 1.15)
    peak_uv = traits.uniform(60.0, 150.0)

    rng = _rng(params, subject, session, run, _SIGNAL)
    n_times = int(round(params.duration_s * params.sfreq))
    signal = _background(rng, positions, n_times, params.sfreq, alpha_hz, params.line_freq)
    # Non-ictal look-alikes, so that not every sharp or rhythmic event is a seizure.
    signal += _interictal_spikes(rng, positions, focus, n_times, params.sfreq)
    signal += _theta_bursts(rng, positions, n_times, params.sfreq)
    seizures = _seizure_times(rng, params)
    rows = []
    for onset, duration in seizures:
        start = int(onset * params.sfreq)
        length = int(duration * params.sfreq)
        discharge, involved = _ictal_discharge(
            rng, positions, focus, length, params.sfreq, start_hz, end_hz, peak_uv
        )
        signal[:, start : start + length] += discharge
        _postictal_attenuation(signal, start + length, params.sfreq)
        rows.append(
            {
                "onset": onset,
                "duration": duration,
                "description": "sz",
                "channels": ",".join(names[i] for i in involved),
            }
        )
    events = pd.DataFrame(rows, columns=["onset", "duration", "description", "channels"])
    return signal - signal.mean(axis=0), events  # common average reference, as in SzCORE


def _seizure_times(rng: np.random.Generator, params: SimulationParams) -> list[tuple[float, float]]:
    """Non-overlapping (onset, duration) pairs, whole tenths of a second, sorted."""
    n = int(rng.integers(params.seizures_per_run[0], params.seizures_per_run[1] + 1))
    durations = np.round(rng.uniform(*params.seizure_duration_s, size=n), 1)
    free = params.duration_s - 2 * _SEIZURE_MARGIN_S - sum(durations) - n * _SEIZURE_GAP_S
    # Split the free time into n + 1 random gaps: the seizures then never overlap.
    gaps = rng.dirichlet(np.ones(n + 1)) * free
    times, t = [], _SEIZURE_MARGIN_S
    for gap, duration in zip(gaps[:-1], durations, strict=True):
        t += gap
        times.append((round(float(t), 1), float(duration)))
        t += duration + _SEIZURE_GAP_S
    return times


def _ictal_discharge(
    rng: np.random.Generator,
    positions: np.ndarray,
    focus: int,
    length: int,
    sfreq: float,
    start_hz: float,
    end_hz: float,
    peak_uv: float,
) -> tuple[np.ndarray, list[int]]:
    """Rhythmic discharge (µV) slowing from ``start_hz`` to ``end_hz`` and growing, spreading
    from ``focus``; also the channels involved at onset."""
    t = np.arange(length) / sfreq
    duration = length / sfreq
    freq = start_hz * (end_hz / start_hz) ** (t / duration)
    phase = 2 * np.pi * np.cumsum(freq) / sfreq
    amplitude = peak_uv * (0.2 + 0.8 * (t / duration) ** 0.7)
    taper = np.clip(np.minimum(t, duration - t) / 1.5, 0, 1)
    distance = np.linalg.norm(positions - positions[focus], axis=1)
    reach = 0.075  # m: channels farther than this stay uninvolved
    joins = np.where(distance <= reach, 0.4 * duration * distance / reach, np.inf)
    onset_ramp = np.clip((t[None] - joins[:, None]) / 2.0, 0, 1)
    weight = np.exp(-distance / 0.06)[:, None] * onset_ramp
    delay = (distance / 0.5)[:, None]  # 0.5 m/s propagation, a few ms between neighbours
    shifted = phase[None] - 2 * np.pi * freq[None] * delay
    wave = np.sin(shifted) + 0.5 * np.sin(2 * shifted + 0.6) + 0.25 * np.sin(3 * shifted + 1.2)
    jitter = 1 + 0.1 * rng.standard_normal((len(positions), 1))
    involved = [int(i) for i in np.flatnonzero(joins <= 0.1 * duration)]
    return weight * jitter * (amplitude * taper)[None] * wave, involved


def _interictal_spikes(
    rng: np.random.Generator, positions: np.ndarray, focus: int, n_times: int, sfreq: float
) -> np.ndarray:
    """Isolated spike-and-slow-wave discharges at the focus, about one per 20 s."""
    t = np.arange(int(0.4 * sfreq)) / sfreq
    shape = -np.exp(-0.5 * ((t - 0.05) / 0.012) ** 2) + 0.4 * np.exp(
        -0.5 * ((t - 0.17) / 0.05) ** 2
    )
    weight = _proximity(positions, positions[focus], 0.035)
    trace = np.zeros(n_times)
    for onset in rng.integers(0, n_times - len(t), rng.poisson(n_times / sfreq / 20.0)):
        trace[onset : onset + len(t)] += rng.uniform(50, 100) * shape
    return weight[:, None] * trace[None]


def _theta_bursts(
    rng: np.random.Generator, positions: np.ndarray, n_times: int, sfreq: float
) -> np.ndarray:
    """Drowsiness-like 1-3 s bursts of 4-7 Hz rhythm over fronto-central sites, one per 40 s."""
    weight = _proximity(positions, np.array([0.0, 0.02, 0.09]), 0.05)
    trace = np.zeros(n_times)
    for _ in range(rng.poisson(n_times / sfreq / 40.0)):
        length = int(rng.uniform(1.0, 3.0) * sfreq)
        onset = int(rng.integers(0, n_times - length))
        t = np.arange(length) / sfreq
        burst = np.sin(2 * np.pi * rng.uniform(4, 7) * t + rng.uniform(0, 2 * np.pi))
        trace[onset : onset + length] += rng.uniform(20, 35) * np.hanning(length) * burst
    return weight[:, None] * trace[None]


def _postictal_attenuation(signal: np.ndarray, end: int, sfreq: float) -> None:
    """Post-ictal suppression: background halved right after the seizure, recovering in ~10 s."""
    t = np.arange(signal.shape[1] - end) / sfreq
    signal[:, end:] *= 1 - 0.5 * np.exp(-t / 10.0)


# --------------------------------------------------------------------------- motor imagery

MI_LABELS = ("left_hand", "right_hand")


def simulate_motor_imagery_recording(
    params: SimulationParams, subject: int, session: int, run: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """One cued motor-imagery run.

    Each trial: ``rest`` (1.5-2.5 s), then a cue and 4 s of imagery of the left or right
    hand, during which mu and beta power over the contralateral sensorimotor cortex drop
    (event-related desynchronisation) and rise slightly on the ipsilateral side.

    Returns
    -------
    signal_uv : numpy.ndarray
        ``(n_chans, n_times)`` in µV.
    events : pandas.DataFrame
        ``onset``, ``duration``, ``description`` (``rest`` / ``left_hand`` /
        ``right_hand``), ``value`` (0 rest, 1 left, 2 right).
    """
    names = params.channel_names
    positions = _positions(names)
    traits = _rng(params, subject, _TRAITS)
    alpha_hz, mu_hz, beta_hz = (
        traits.uniform(8.5, 11),
        traits.uniform(9.5, 12),
        traits.uniform(18, 24),
    )
    depth = traits.uniform(0.15, 0.35)  # fraction of mu/beta amplitude lost contralaterally
    rng = _rng(params, subject, session, run, _SIGNAL)
    gain = 1 + 0.1 * rng.standard_normal()  # session/run-level amplitude shift

    sides = rng.permutation(np.repeat([0, 1], params.trials_per_run // 2))
    rows, t = [], 2.0
    for side in sides:
        rest = rng.uniform(1.5, 2.5)
        rows.append({"onset": t, "duration": rest, "description": "rest", "value": 0})
        t += rest
        rows.append(
            {"onset": t, "duration": 4.0, "description": MI_LABELS[side], "value": side + 1}
        )
        t += 4.0
    events = pd.DataFrame(rows).round({"onset": 3, "duration": 3})
    n_times = int(np.ceil(t + 2.0) * params.sfreq)

    signal = gain * _background(rng, positions, n_times, params.sfreq, alpha_hz, params.line_freq)
    times = np.arange(n_times) / params.sfreq
    for hemisphere, electrode in ((0, "C3"), (1, "C4")):  # 0 = left hemisphere
        centre = _positions((electrode,))[0]
        weight = _proximity(positions, centre, 0.03)
        envelope = np.ones(n_times)
        for e in events[events["value"] > 0].itertuples():
            imagined_side = e.value - 1  # 0 = left hand → right hemisphere (C4)
            # Trial-to-trial variability: some trials desynchronise little or not at all.
            strength = rng.uniform(0.0, 1.5)
            change = -depth * strength if imagined_side != hemisphere else 0.1 * strength
            ramp = np.clip((times - e.onset - 0.3) / 0.5, 0, 1) * np.clip(
                (e.onset + e.duration - times) / 0.5, 0, 1
            )
            envelope += change * ramp
        rhythm = 9.0 * _band_noise(rng, 1, n_times, params.sfreq, mu_hz, 0.8)[0]
        rhythm += 5.0 * _band_noise(rng, 1, n_times, params.sfreq, beta_hz, 1.5)[0]
        signal += gain * weight[:, None] * (envelope * rhythm)[None]
    return signal, events


# --------------------------------------------------------------------------- retrieval


def load_embeddings(params: SimulationParams) -> np.ndarray:
    """The ``(n_concepts, dim)`` float32 image embeddings the retrieval EEG is built from."""
    if params.embeddings is None:
        rng = _rng(params, 0, _FORWARD, 1)
        matrix = rng.standard_normal((params.n_concepts, params.embedding_dim))
    else:
        path = Path(params.embeddings).expanduser()
        try:
            matrix = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read image embeddings: {err}", path=path) from err
        if matrix.ndim < 2 or not np.all(np.isfinite(matrix)):
            raise ConfigError("embeddings must be a finite (n_concepts, dim) array", path=path)
        matrix = matrix.reshape(len(matrix), -1)
    matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix.astype(np.float32)


@dataclass(frozen=True)
class _ForwardModel:
    """Embedding → latent sources (``weights``), each with a scalp map and a time course."""

    weights: np.ndarray  # (n_sources, dim)
    patterns: np.ndarray  # (n_chans, n_sources)
    kernels: np.ndarray  # (n_sources, n_kernel_times)
    evoked: np.ndarray = field(repr=False)  # (n_chans, n_kernel_times) image-independent


def _forward_model(
    params: SimulationParams, positions: np.ndarray, dim: int, n_sources: int = 24
) -> _ForwardModel:
    """The fixed forward model (same for every subject given the seed)."""
    rng = _rng(params, 0, _FORWARD, 2)
    weights = rng.standard_normal((n_sources, dim)) * np.sqrt(dim / n_sources)
    centres = positions[rng.integers(len(positions), size=n_sources)]
    patterns = np.stack([_proximity(positions, c, 0.035) for c in centres], axis=1)
    patterns *= rng.choice([-1.0, 1.0], size=n_sources)
    t = np.arange(int(0.5 * params.sfreq)) / params.sfreq
    latency = rng.uniform(0.08, 0.3, size=(n_sources, 1))
    width = rng.uniform(0.03, 0.08, size=(n_sources, 1))
    freq = rng.uniform(3, 12, size=(n_sources, 1))
    kernels = np.exp(-0.5 * ((t - latency) / width) ** 2) * np.cos(2 * np.pi * freq * (t - latency))
    occipital = _proximity(positions, np.array([0.0, -0.1, 0.02]), 0.05)
    erp = 6 * np.exp(-0.5 * ((t - 0.1) / 0.02) ** 2) - 8 * np.exp(-0.5 * ((t - 0.17) / 0.03) ** 2)
    return _ForwardModel(weights, patterns, kernels, occipital[:, None] * erp[None])


def simulate_retrieval_recording(
    params: SimulationParams, subject: int, session: int, run: int, *, embeddings: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame]:
    """One rapid serial visual presentation run: every concept ``repetitions_per_run`` times.

    Returns
    -------
    signal_uv : numpy.ndarray
        ``(n_chans, n_times)`` in µV.
    events : pandas.DataFrame
        ``onset``, ``duration`` (0.1 s), ``description`` (``concept_017``), ``value`` (17).
    """
    names = params.channel_names
    positions = _positions(names)
    model = _forward_model(params, positions, embeddings.shape[1])
    traits = _rng(params, subject, _TRAITS)
    # Subjects share the forward model up to a small perturbation of the scalp maps.
    patterns = model.patterns * (1 + 0.2 * traits.standard_normal(model.patterns.shape))
    rng = _rng(params, subject, session, run, _SIGNAL)
    order = np.concatenate(
        [rng.permutation(len(embeddings)) for _ in range(params.repetitions_per_run)]
    )
    onset_samples = int(params.sfreq) + np.round(
        np.arange(len(order)) * params.soa_s * params.sfreq
    ).astype(int)
    kernel_len = model.kernels.shape[1]
    n_times = int(np.ceil((onset_samples[-1] + kernel_len) / params.sfreq + 1) * params.sfreq)

    sources = embeddings @ model.weights.T  # (n_concepts, n_sources), ~unit variance
    signal = _background(rng, positions, n_times, params.sfreq, traits.uniform(8.5, 11), 0.0)
    for concept, onset in zip(order, onset_samples, strict=True):
        response = 4.0 * patterns @ (sources[concept][:, None] * model.kernels) + model.evoked
        signal[:, onset : onset + kernel_len] += response
    events = pd.DataFrame(
        {
            "onset": np.round(onset_samples / params.sfreq, 4),
            "duration": 0.1,
            "description": [f"concept_{c:03d}" for c in order],
            "value": order,
        }
    )
    return signal, events
