"""braindecode-format pretrained weights for braindecode models, with a coverage report.

``init_from=hf://<org>/<name>`` (or a local folder) holding what braindecode's
``save_pretrained`` / ``push_to_hub`` write (``config.json`` with ``braindecode_version``,
``model.safetensors``) is read by :func:`read_braindecode_source`; :func:`load_braindecode`
loads it with braindecode's own loader (the model class's ``from_pretrained``, its saved
architecture), compares every tensor with the configured model and copies the ones that
match: the :class:`Coverage` report lists matched, missing, unexpected and reshaped
tensors, is logged and saved in the run folder, and a share of matched tensors below
``min_matched`` is refused with the report in the error (no silent partial load: a
checkpoint of another architecture loads nothing). The classification head
(``final_layer``) is new for the task and never copied.

:func:`record_input_report` checks and records how the data meet a foundation model
(:mod:`neurodecode.models.foundation`): channels matched, derived or missing, channels
missing from some recordings, sampling rate and units.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from neurodecode import jsonio
from neurodecode.data.montage import channel_positions, try_canonical_name
from neurodecode.errors import ChannelError, CheckpointError
from neurodecode.hub.format import CONFIG_NAME, WEIGHTS_NAME
from neurodecode.hub.load import HF_SCHEME, resolve_init_source
from neurodecode.models.base import FINAL_LAYER
from neurodecode.models.baselines import BraindecodeModel
from neurodecode.models.foundation import FoundationModel, check_units

logger = logging.getLogger(__name__)

#: Files written into the run folder.
COVERAGE_NAME = "weight_coverage.json"
INPUT_REPORT_NAME = "montage_report.json"
HEAD_PREFIX = f"{FINAL_LAYER}."


@dataclass
class BraindecodeSource:
    """Pretrained weights in braindecode's Hub format.

    Attributes
    ----------
    folder : pathlib.Path
        The local folder (a Hub snapshot or the folder given).
    source : str
        What ``init_from`` said (for messages).
    config : dict
        braindecode's ``config.json``.
    """

    folder: Path
    source: str
    config: dict[str, Any]


@dataclass
class Coverage:
    """Which tensors of a model a checkpoint gave: the weight-coverage report."""

    source: str
    model: str
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reshaped: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    head: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Matched tensors over the model's tensors outside the new head."""
        total = len(self.matched) + len(self.missing) + len(self.reshaped)
        return len(self.matched) / total if total else 0.0

    def text(self) -> str:
        """The report as printed: counts, then the names that did not match."""
        lines = [
            f"weight coverage of {self.model} from {self.source}: {len(self.matched)} matched "
            f"({self.share:.0%} of the model's tensors outside the new head), "
            f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.reshaped)} reshaped; head (new): {len(self.head)}"
        ]
        for kind, names in (("missing", self.missing), ("unexpected", self.unexpected)):
            if names:
                lines.append(f"  {kind}: {_preview(names)}")
        for name, shapes in list(self.reshaped.items())[:8]:
            lines.append(f"  reshaped: {name} {shapes['checkpoint']} -> {shapes['model']}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``weight_coverage.json``."""
        return {
            "source": self.source,
            "model": self.model,
            "share_matched": self.share,
            "matched": self.matched,
            "missing": self.missing,
            "unexpected": self.unexpected,
            "reshaped": self.reshaped,
            "head": self.head,
        }


def _preview(names: list[str], limit: int = 8) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def read_braindecode_source(init_from: str | Path) -> BraindecodeSource | None:
    """The braindecode-format weights ``init_from`` names, or None if it names another kind.

    A local folder is read as it is; ``hf://org/name[@revision]`` is downloaded (once,
    into the Hugging Face cache). Run folders, checkpoints and neurodecode exports are
    None here (:mod:`neurodecode.finetune` reads them).
    """
    text = str(init_from)
    local = Path(text).expanduser()
    if local.is_dir():
        if not (local / CONFIG_NAME).is_file():
            return None
    elif not text.startswith(HF_SCHEME):
        return None
    config_path = (local if local.is_dir() else resolve_init_source(text)) / CONFIG_NAME
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"unreadable config.json ({err})", path=config_path) from err
    if not isinstance(config, dict) or "braindecode_version" not in config:
        return None
    return BraindecodeSource(config_path.parent, text, config)


def compare(own: Mapping[str, torch.Tensor], theirs: Mapping[str, torch.Tensor], *,
            source: str, model: str) -> Coverage:  # fmt: skip
    """The coverage of ``own`` (a model's state) by ``theirs`` (a checkpoint's)."""
    report = Coverage(source, model)
    for name, tensor in own.items():
        if name.startswith(HEAD_PREFIX):
            report.head.append(name)
        elif name not in theirs:
            report.missing.append(name)
        elif tuple(theirs[name].shape) != tuple(tensor.shape):
            report.reshaped[name] = {
                "checkpoint": list(theirs[name].shape),
                "model": list(tensor.shape),
            }
        else:
            report.matched.append(name)
    report.unexpected = sorted(n for n in theirs if n not in own and not n.startswith(HEAD_PREFIX))
    return report


def _pretrained_state(source: BraindecodeSource, cls: type[nn.Module]) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors as braindecode's ``from_pretrained`` loads them.

    Only tensors that come from the file count: braindecode's loader is not strict, so
    the model it returns also holds freshly initialised tensors the file lacks (a
    checkpoint of another model "loads" with no error and nothing in it); those are left
    out. Tensors of the file that the loader did not take are kept, so they are reported
    (as unexpected) instead of vanishing.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, UserWarning))
        try:
            pretrained = cls.from_pretrained(str(source.folder), strict=False)
        except Exception as err:  # braindecode's own refusal, with the file named
            raise CheckpointError(
                f"braindecode's {cls.__name__}.from_pretrained could not load it: {err}",
                path=source.source,
            ) from err
    in_file = load_file(str(source.folder / WEIGHTS_NAME))
    renamed = getattr(cls, "mapping", None) or {}  # braindecode's renames of old names
    from_file = {renamed.get(name, name) for name in in_file}
    loaded = {k: v.detach() for k, v in pretrained.state_dict().items() if k in from_file}
    return {**{k: v for k, v in in_file.items() if k not in loaded}, **loaded}


def load_braindecode(encoder: nn.Module, source: BraindecodeSource, *,
                     min_matched: float = 0.9) -> Coverage:  # fmt: skip
    """Load braindecode-format weights into ``encoder.net`` (all but its head), reporting.

    Raises
    ------
    CheckpointError
        If ``encoder`` is not a braindecode model, or fewer than ``min_matched`` of its
        tensors outside the head are matched in name and shape (the report in the error;
        nothing is copied then).
    """
    if not isinstance(encoder, BraindecodeModel):
        raise CheckpointError(
            f"init_from holds braindecode weights, but the model is {type(encoder).__name__}",
            path=source.source,
            hint="choose the braindecode model they were saved from (model=labram, ...)",
        )
    if not 0.0 <= min_matched <= 1.0:
        raise CheckpointError(f"finetune.min_matched must lie in [0, 1], got {min_matched}")
    theirs = _pretrained_state(source, type(encoder.net))
    own = encoder.net.state_dict()
    report = compare(own, theirs, source=source.source, model=encoder.model_name)
    if report.share < min_matched:
        raise CheckpointError(
            f"only {report.share:.0%} of the model's tensors match the checkpoint "
            f"(finetune.min_matched={min_matched:g}); nothing was loaded.\n{report.text()}",
            path=source.source,
            hint="configure the model as it was pretrained (the repository's config.json)",
        )
    encoder.net.load_state_dict({k: theirs[k] for k in report.matched}, strict=False)
    logger.info(report.text())
    return report


def write_coverage(report: Coverage, run_dir: Path) -> Path:
    """Save ``report`` as ``weight_coverage.json`` in ``run_dir``."""
    return jsonio.write_json(run_dir / COVERAGE_NAME, report.to_dict())


def record_input_report(
    encoder: nn.Module, *, scaling: Mapping[str, Any] | None, qc_report: Path | None, run_dir: Path
) -> dict[str, Any] | None:
    """Check and record how the data meet a foundation model (None for other encoders).

    ``scaling`` is the window cache's ``preprocess.scaling``; ``qc_report`` its
    ``qc.json``, whose per-recording ``interpolated``, ``masked`` and ``missing_channels``
    say which data channels were interpolated or are zeros. The report (model channels
    matched, derived or missing; data channels feeding the model that were interpolated or
    zeroed, by recording; rate and window; units) is logged and saved as
    ``montage_report.json``.

    Raises
    ------
    ContractError
        If the data's units are not the model's.
    ChannelError
        If a data channel feeding the model is zeros in some recordings (missing or
        masked), unless the model allows missing channels (``allow_missing_channels``).
    """
    if not isinstance(encoder, FoundationModel):
        return None
    if scaling is not None:
        check_units(encoder.model_name, encoder.input_units, scaling)
    report = encoder.report()
    qc = json.loads(qc_report.read_text()) if qc_report is not None else {}
    feeding = {
        name for name, used in zip(encoder.ch_names, encoder.mapping.matrix.any(axis=0),
                                   strict=True) if used
    }  # fmt: skip
    for kind, keys in (("interpolated", ("interpolated",)),
                       ("zeroed", ("masked", "missing_channels"))):  # fmt: skip
        report["channels"][kind] = _by_channel(qc.get("recordings") or [], keys, feeding)
    jsonio.write_json(run_dir / INPUT_REPORT_NAME, report)
    logger.info(_input_text(report))
    zeroed = report["channels"]["zeroed"]
    if zeroed and not encoder.allow_missing_channels:
        raise ChannelError(
            f"{encoder.model_name}: data channels feeding it are missing or masked (zeros) in "
            f"some recordings: {'; '.join(f'{ch} in {_preview(r, 3)}' for ch, r in zeroed.items())}",
            hint=_zeroed_hint(list(zeroed)),
        )
    return report


def _zeroed_hint(channels: list[str]) -> str:
    """What can be done about zeroed data channels: interpolation is offered only where it
    can run (referential channels with a known 10-05 position; see
    :func:`neurodecode.data.artifacts.interpolate_bad_channels`)."""
    hint = "set allow_missing_channels=true to train with them zeroed"
    positions = channel_positions(channels)
    fixed = [
        ch for ch, p in zip(channels, positions, strict=True)
        if "-" not in (try_canonical_name(ch) or "-") and np.isfinite(p).all()
    ]  # fmt: skip
    if fixed:
        hint += f", or preprocess.artifacts.bad_channels=interpolate (for {_preview(fixed, 8)})"
    others = [ch for ch in channels if ch not in fixed]
    if others:
        hint += (
            f"; {_preview(others, 8)} cannot be interpolated (only referential channels with "
            "known 10-05 positions are)"
        )
    if any("-" in (try_canonical_name(ch) or "") for ch in others):
        hint += (
            "; for a bipolar model montage, harmonise to referential channels "
            "(preprocess.channels.target=szcore_19): the model derives its pairs from them"
        )
    return hint


def _by_channel(records: list[Mapping[str, Any]], keys: tuple[str, ...], feeding: set[str]
                ) -> dict[str, list[str]]:  # fmt: skip
    """``{data channel: [recordings]}`` for the channels the QC lists under ``keys``."""
    out: dict[str, list[str]] = {}
    for record in records:
        for key in keys:
            for name in record.get(key) or []:
                if name in feeding:
                    out.setdefault(name, []).append(str(record.get("recording")))
    return out


def _input_text(report: Mapping[str, Any]) -> str:
    channels = report["channels"]
    lines = [f"montage of {report['model']}: {len(channels['model_channels'])} model channels"]
    for kind in ("matched", "derived", "missing"):
        lines.append(f"  {kind} ({len(channels[kind])}): {', '.join(channels[kind]) or '-'}")
    for kind in ("interpolated", "zeroed"):
        for name, recs in channels[kind].items():
            lines.append(f"  {name} {kind} in {len(recs)} recording(s): {_preview(recs, 3)}")
    resampled = "resampled in the model" if report["resampled"] else "as pretrained"
    lines.append(
        f"  rate: data {report['sfreq']['data']:g} Hz, model {report['sfreq']['model']:g} Hz "
        f"({resampled}); window {report['n_times']['data']} -> {report['n_times']['model']} "
        f"samples; units {report['input_units']}"
    )
    return "\n".join(lines)
