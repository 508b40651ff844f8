"""Load an exported model from a local folder or the Hugging Face Hub, safely.

Safety rules: weights are read only from ``model.safetensors`` (never unpickled; a repository
holding only ``.bin``/``.pt``/``.ckpt`` files is refused), the architecture is created only
through neurodecode's model registry (no Hydra keys such as ``_args_`` or ``_partial_``),
a ``config.json`` is plain data (an OmegaConf interpolation such as ``${oc.env:...}`` in any
field is refused, never resolved), files a run folder points to must lie inside it, and
missing or unexpected weights are an error unless the caller allows a partial load.
Downloads go through ``huggingface_hub``, so its cache, ``HF_ENDPOINT``, ``HF_TOKEN`` and
``HF_HUB_OFFLINE=1`` work as usual.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurodecode import __version__
from neurodecode.data import scaling
from neurodecode.data.montage import try_canonical_name
from neurodecode.errors import (
    CheckpointError,
    ConfigError,
    ContractError,
    ForeignTargetError,
    UnknownNameError,
)
from neurodecode.hub.format import (
    CONFIG_NAME,
    FORMAT_VERSION,
    PICKLE_SUFFIXES,
    RESULTS_NAME,
    WEIGHTS_NAME,
    sha256_of,
)
from neurodecode.jsonio import nan_for_null
from neurodecode.models.base import EncoderBase, upgrade_state_dict
from neurodecode.registry import MODELS, instantiate

logger = logging.getLogger(__name__)

HF_SCHEME = "hf://"
#: What starts an OmegaConf interpolation.
INTERPOLATION = "${"


@dataclass
class Pretrained:
    """A loaded model and everything needed to feed it the data it was trained on.

    Attributes
    ----------
    model : torch.nn.Module
        The model, in eval mode, weights loaded.
    config : dict
        The full ``config.json``.
    ch_names : list of str
        Channel order of the model's input rows.
    sfreq : float
        Sampling rate (Hz) of the input.
    n_times : int
        Samples per window.
    ch_pos : numpy.ndarray or None
        ``(n_chans, 3)`` electrode positions in metres (NaN unknown).
    units : str or None
        Units of the input after preprocessing (e.g. ``"uV"``), when recorded.
    preprocessing : dict or None
        Preprocessing config of the training data.
    labels : list of str or None
        Output names in order.
    source : Path
        The local folder the files were read from (a Hub cache snapshot for Hub models).
    missing_keys, unexpected_keys : list of str
        Weights the model has but the file lacks, and the reverse (empty unless a partial
        load was allowed).
    """

    model: torch.nn.Module
    config: dict[str, Any]
    ch_names: list[str]
    sfreq: float
    n_times: int
    ch_pos: np.ndarray | None
    units: str | None
    preprocessing: dict[str, Any] | None
    labels: list[str] | None
    source: Path
    missing_keys: list[str] = field(default_factory=list)
    unexpected_keys: list[str] = field(default_factory=list)


def from_pretrained(
    source: str | Path,
    *,
    revision: str | None = None,
    allow_partial: bool = False,
    device: str | torch.device = "cpu",
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> Pretrained:
    """Load an exported neurodecode model.

    Parameters
    ----------
    source : str or Path
        A local folder with ``config.json`` and ``model.safetensors``, or a Hub repository
        ``org/name`` (``hf://org/name`` and ``hf://org/name@revision`` also work). An existing
        local folder wins over a repository of the same name.
    revision : str, optional
        Branch, tag or commit hash to pin (Hub only); default the ``main`` branch.
    allow_partial : bool
        Load even if weights are missing or unexpected (they are reported on the result
        and logged); by default that is a :class:`~neurodecode.errors.CheckpointError`.
    device : str or torch.device
        Where to put the weights.
    token, cache_dir : optional
        Passed to ``huggingface_hub.snapshot_download``.

    Returns
    -------
    Pretrained
    """
    folder = resolve_init_source(source, revision=revision, token=token, cache_dir=cache_dir)
    config = read_config(folder / CONFIG_NAME)
    model = build_from_config(config, path=folder / CONFIG_NAME)
    missing, unexpected = load_weights(
        model,
        folder / WEIGHTS_NAME,
        expected_sha256=(config.get("weights") or {}).get("sha256"),
        allow_partial=allow_partial,
        device=device,
    )
    signal = config["signal"]
    ch_pos = signal.get("ch_pos")
    return Pretrained(
        model=model.eval(),
        config=config,
        ch_names=list(signal["ch_names"]),
        sfreq=float(signal["sfreq"]),
        n_times=int(signal["n_times"]),
        ch_pos=None if ch_pos is None else np.asarray(ch_pos, dtype=float),
        units=signal.get("units"),
        preprocessing=config.get("preprocessing"),
        labels=config.get("labels"),
        source=folder,
        missing_keys=missing,
        unexpected_keys=unexpected,
    )


def resolve_init_source(
    source: str | Path,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
) -> Path:
    """The local folder of an exported model: a local path, or a Hub snapshot downloaded.

    Recipes call this for ``init_from=`` values: ``hf://org/name``, ``hf://org/name@rev``,
    ``org/name`` or a local folder.

    Raises
    ------
    CheckpointError
        If the folder or repository does not exist, the revision does not exist, the files
        are not in the cache while offline, or the repository holds no safetensors weights.
    """
    text = str(source)
    repo_id = text[len(HF_SCHEME) :] if text.startswith(HF_SCHEME) else None
    if repo_id is None:
        local = Path(text).expanduser()
        if local.exists():
            if revision is not None:
                raise ConfigError(
                    f"revision={revision!r} given for a local folder",
                    path=local,
                    hint="revisions pin Hub repositories; drop it or use hf://",
                )
            return _check_folder(local, where=str(local))
        if text.count("/") != 1 or text.startswith((".", "/", "~")):
            raise CheckpointError(
                "no such folder",
                path=local,
                hint="give an exported model folder or a Hub repository as org/name",
            )
        repo_id = text
    if "@" in repo_id:
        repo_id, pinned = repo_id.split("@", 1)
        if revision is not None and revision != pinned:
            raise ConfigError(f"two revisions given: {pinned!r} in {text!r} and {revision!r}")
        revision = pinned
    folder = _download(repo_id, revision=revision, token=token, cache_dir=cache_dir)
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if WEIGHTS_NAME not in names or CONFIG_NAME not in names:
        names = _remote_files(repo_id, revision=revision, token=token) or names
    where = f"{HF_SCHEME}{repo_id}" + (f"@{revision}" if revision else "")
    return _check_folder(folder, where=where, names=names)


def _remote_files(repo_id: str, *, revision: str | None, token: str | bool | None) -> list[str]:
    """File names of a Hub repository (to explain an incomplete one); empty when offline."""
    from huggingface_hub import HfApi

    try:
        return HfApi(token=token).list_repo_files(repo_id, revision=revision)
    except Exception:  # only used to word an error; the error is raised either way
        logger.debug("could not list the files of %s", repo_id, exc_info=True)
        return []


def _download(
    repo_id: str, *, revision: str | None, token: str | bool | None, cache_dir: str | Path | None
) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = f"{constants.ENDPOINT}/{repo_id}"
    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=["*.json", "*.safetensors", "*.md"],
                token=token,
                cache_dir=cache_dir,
                library_name="neurodecode",
                library_version=__version__,
            )
        )
    except RevisionNotFoundError as err:
        raise CheckpointError(
            f"the repository exists but has no revision {revision!r}",
            path=url,
            hint=f"use a branch, tag or commit hash listed at {url}/tree, or omit revision",
        ) from err
    except RepositoryNotFoundError as err:
        raise CheckpointError(
            f"no model repository {repo_id!r} on {constants.ENDPOINT} (or it is private)",
            path=url,
            hint="check the org/name spelling (no local folder of that name exists either); "
            "for a private repository log in with `hf auth login` or set HF_TOKEN",
        ) from err
    except LocalEntryNotFoundError as err:
        raise CheckpointError(
            "not in the local Hugging Face cache, and the Hub cannot be reached "
            + ("(HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else "(network error)"),
            path=url,
            hint="download it once while online (the cache is reused afterwards), or give a "
            "local folder",
        ) from err
    except HfHubHTTPError as err:
        raise CheckpointError(f"the Hub refused the download: {err}", path=url) from err
    except ValueError as err:  # malformed repo id or revision
        raise ConfigError(f"invalid Hub repository {repo_id!r}: {err}") from err


def _check_folder(folder: Path, *, where: str, names: list[str] | None = None) -> Path:
    """Return ``folder`` if it holds an export; else explain what it holds instead.

    ``names`` lists the files of a Hub repository (only the safe ones are downloaded).
    """
    if names is None:
        if not folder.is_dir():
            raise CheckpointError(
                "not a folder",
                path=where,
                hint="give the exported model folder, not a file inside it",
            )
        names = sorted(p.name for p in folder.iterdir())
    if WEIGHTS_NAME in names and CONFIG_NAME in names:
        return folder
    pickles = [name for name in names if Path(name).suffix in PICKLE_SUFFIXES]
    if pickles and WEIGHTS_NAME not in names:
        raise CheckpointError(
            f"only pickle-based checkpoints here ({', '.join(pickles)}); neurodecode loads "
            f"weights only from {WEIGHTS_NAME} because unpickling can run arbitrary code",
            path=where,
            hint="if you trust the file, convert it yourself with torch.load(..., "
            "weights_only=True) and neurodecode.hub.export_model",
        )
    missing = [name for name in (CONFIG_NAME, WEIGHTS_NAME) if name not in names]
    raise CheckpointError(
        f"not an exported neurodecode model: {', '.join(missing)} missing",
        path=where,
        hint="export one with neurodecode.hub.export_model or `python -m neurodecode.hub export`",
    )


def read_config(path: Path) -> dict[str, Any]:
    """Read and validate an exported model's ``config.json``."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"unreadable config: {err}", path=path) from err
    if not isinstance(config, dict) or "format_version" not in config:
        raise CheckpointError("not a neurodecode config (no format_version)", path=path)
    version = config["format_version"]
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"invalid format_version {version!r}", path=path)
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"written by a newer neurodecode ({config.get('neurodecode_version', '?')}, format "
            f"version {version}); this neurodecode reads format versions up to {FORMAT_VERSION}",
            path=path,
            hint="upgrade neurodecode (pip install -U neurodecode), or pin an older revision "
            "of the model",
        )
    for key in ("model", "signal"):
        if not isinstance(config.get(key), dict):
            raise CheckpointError(f"config has no {key!r} section", path=path)
    for key in ("ch_names", "sfreq", "n_times"):
        if key not in config["signal"]:
            raise CheckpointError(f"signal contract lacks {key!r}", path=path)
    refuse_interpolations(config, path=path)
    check_model_spec(config["model"], path=path)
    _unknown_positions_as_nan(config, path)
    # train_split scaling without its statistics: refused, never re-estimated on new data
    scaling.recorded_statistics(
        config.get("preprocessing"), len(config["signal"]["ch_names"]), where=path
    )
    return config


def refuse_interpolations(data: Any, *, path: str | Path, field: str = "") -> None:
    """Refuse any OmegaConf interpolation (``${...}``) in a key or string of ``data``.

    Configs read from exports, checkpoints and run records are plain data: resolving
    ``${oc.env:HF_TOKEN}`` or ``${now:...}`` would run resolvers chosen by whoever wrote
    the file, so such a field is an error naming the field, and its value is not shown.

    Raises
    ------
    CheckpointError
        Naming ``path`` and the first field (dotted, list items by index) holding one.
    """
    if isinstance(data, Mapping):
        for key, value in data.items():
            name = f"{field}.{key}" if field else str(key)
            if INTERPOLATION in str(key):
                raise _interpolation_error(name, path)
            refuse_interpolations(value, path=path, field=name)
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            refuse_interpolations(value, path=path, field=f"{field}[{i}]")
    elif isinstance(data, str) and INTERPOLATION in data:
        raise _interpolation_error(field, path)


def _interpolation_error(field: str, path: str | Path) -> CheckpointError:
    return CheckpointError(
        f"field {field!r} holds an OmegaConf interpolation ('${{...}}'); a config read "
        "from a checkpoint is plain data and is never resolved",
        path=path,
        hint="write the value itself into the file; environment variables, dates and other "
        "resolvers are never looked up there",
    )


def check_model_spec(spec: Mapping[str, Any], *, path: str | Path | None = None) -> None:
    """Check that a model config names only registered models, with no Hydra keys.

    ``spec`` is ``{"_target_": registered model name, **arguments}``; a nested mapping may
    name a registered model too. Hydra's instantiation keys (``_args_``, ``_partial_``,
    ``_recursive_``, ``_convert_``) and names from other registries (a task) are refused.

    Raises
    ------
    ForeignTargetError
        Naming ``path`` and the offending target or key.
    """
    target = spec.get("_target_")
    try:
        if not isinstance(target, str):
            raise UnknownNameError("no model name")
        MODELS.get(target)
    except UnknownNameError as err:
        raise ForeignTargetError(
            f"refusing to build {target!r}: the model config may only name a model registered "
            "with neurodecode",
            path=path,
            hint="valid models: " + ", ".join(MODELS.names()),
        ) from err
    for key, value in spec.items():
        if key != "_target_" and key.startswith("_") and key.endswith("_"):
            raise ForeignTargetError(
                f"the model config holds the instantiation key {key!r}; only '_target_' "
                "(a registered model) is allowed",
                path=path,
            )
        if isinstance(value, Mapping) and "_target_" in value:
            check_model_spec(value, path=path)


def read_run_record(run: Path) -> dict[str, Any]:
    """A run folder's ``results.json``, checked to be plain data (no interpolation).

    Raises
    ------
    CheckpointError
        If there is none, it is not JSON, or a field holds an interpolation.
    """
    path = run / RESULTS_NAME
    if not path.is_file():
        raise CheckpointError(
            f"no {RESULTS_NAME}: not a finished run of python -m neurodecode.train",
            path=run,
            hint="give the run folder (runs/<recipe>/<time>/) or an exported model folder",
        )
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"unreadable results: {err}", path=path) from err
    if not isinstance(results, dict):
        raise CheckpointError("not a run record (not a JSON object)", path=path)
    refuse_interpolations(results, path=path)
    return results


def inside(folder: Path, relative: str | Path, *, recorded_in: str | Path) -> Path:
    """``folder / relative``, refused unless it resolves to a path inside ``folder``.

    A run folder's records (``results.json``) name its checkpoints relative to it; a name
    that leaves it (``../../x.ckpt``, an absolute path, a link pointing out) is refused.

    Raises
    ------
    CheckpointError
        Naming ``recorded_in`` and the path.
    """
    if not isinstance(relative, str | Path):
        raise CheckpointError(f"{relative!r} is not a path", path=recorded_in)
    path = folder / relative
    root = folder.resolve()
    if not path.resolve().is_relative_to(root):
        raise CheckpointError(
            f"{str(relative)!r} points outside the run folder {root}",
            path=recorded_in,
            hint="a run folder's files are read only from inside it",
        )
    return path


def _unknown_positions_as_nan(config: dict[str, Any], path: Path) -> None:
    """Read unknown electrode coordinates, ``null`` (or ``NaN`` in old exports), as NaN."""
    signal = config["signal"]
    chs_info = config["model"].get("chs_info") or []
    try:
        if signal.get("ch_pos") is not None:
            signal["ch_pos"] = [nan_for_null(xyz) for xyz in signal["ch_pos"]]
        for ch in chs_info:
            if ch.get("loc") is not None:
                ch["loc"] = nan_for_null(ch["loc"])
    except (AttributeError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"channel positions are not lists of numbers or null: {err}", path=path
        ) from err


def build_from_config(config: Mapping[str, Any], *, path: str | Path | None = None):
    """Instantiate the model described by ``config["model"]`` through the registry only.

    Raises
    ------
    ForeignTargetError
        If ``_target_`` (or a nested one) is not a registered neurodecode model.
    """
    spec = dict(config["model"])
    target = spec.get("_target_")
    check_model_spec(spec, path=path)
    try:
        return instantiate(spec)
    except ForeignTargetError as err:
        raise ForeignTargetError(err.reason, path=path, hint=err.hint) from err
    except TypeError as err:
        raise CheckpointError(
            f"the arguments do not fit {target!r}: {err}",
            path=path,
            hint="the model was exported by an incompatible neurodecode "
            "version; upgrade or pin an older revision",
        ) from err


def read_weights(
    path: str | Path, *, expected_sha256: str | None = None, device: str | torch.device = "cpu"
) -> dict[str, torch.Tensor]:
    """Read a ``model.safetensors`` file, checking it against its recorded SHA-256.

    Raises
    ------
    CheckpointError
        Missing, corrupted or altered file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    hint = (
        "delete the file (for a Hub model, its folder in the Hugging Face cache) and "
        "download it again"
    )
    if not path.is_file():
        raise CheckpointError("the weights file is missing", path=path, hint=hint)
    if expected_sha256 is not None and sha256_of(path) != expected_sha256:
        raise CheckpointError(
            "weights do not match the SHA-256 recorded in config.json (corrupted or altered)",
            path=path,
            hint=hint,
        )
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"not a readable safetensors file: {err}", path=path, hint=hint
        ) from err


def load_weights(
    model: torch.nn.Module,
    path: str | Path,
    *,
    expected_sha256: str | None = None,
    allow_partial: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[list[str], list[str]]:
    """Load ``model.safetensors`` into ``model``; return ``(missing, unexpected)`` keys.

    Parameters
    ----------
    model : torch.nn.Module
        The model to fill (for ``init_from``: the recipe's freshly built model).
    path : str or Path
        A safetensors file.
    expected_sha256 : str, optional
        Refuse the file unless it has this SHA-256 (``config.json`` records it).
    allow_partial : bool
        Accept missing and unexpected keys (e.g. a new head); they are logged.

    Raises
    ------
    CheckpointError
        Corrupted or altered file, shapes that do not fit, or (unless ``allow_partial``)
        missing or unexpected weights.
    """
    state = read_weights(path, expected_sha256=expected_sha256, device=device)
    return load_state(model, state, allow_partial=allow_partial, path=Path(path), device=device)


def load_state(
    model: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    allow_partial: bool = False,
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[list[str], list[str]]:
    """Copy ``state`` into ``model`` after checking names and shapes; see :func:`load_weights`.

    Nothing is copied when the check fails, so a refused load leaves ``model`` untouched.
    An encoder's head saved under its former name (``head.*``) is read as ``final_layer.*``.
    """
    if isinstance(model, EncoderBase):
        state = upgrade_state_dict(state)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if state[k].shape != own[k].shape
    ]
    if wrong_shape:
        raise CheckpointError(
            f"{len(wrong_shape)} weight(s) have the wrong shape: {_preview(wrong_shape)}",
            path=path,
            hint="the checkpoint was trained with other model arguments (channels, outputs, "
            "size); build the model with the checkpoint's config",
        )
    if (missing or unexpected) and not allow_partial:
        raise CheckpointError(
            f"partial load refused: {len(missing)} missing weight(s) {_preview(missing)}, "
            f"{len(unexpected)} unexpected weight(s) {_preview(unexpected)}",
            path=path,
            hint="pass allow_partial=True if that is intended (e.g. a new output head)",
        )
    if missing or unexpected:
        logger.warning("partial load from %s: missing %s, unexpected %s", path, missing, unexpected)
    model.load_state_dict(state, strict=False)
    model.to(device)
    return missing, unexpected


def _preview(items: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


def _respelled(given: Sequence[str], wanted: Sequence[str]) -> dict[str, str]:
    """``{given name: wanted name}`` for names that differ only in spelling (10-05 rules)."""
    wanted_set = set(wanted)
    pairs = {name: try_canonical_name(name) for name in given}
    return {name: canon for name, canon in pairs.items() if canon in wanted_set}


def check_contract(
    pretrained: Pretrained,
    *,
    ch_names: Sequence[str] | None = None,
    sfreq: float | None = None,
    n_times: int | None = None,
    path: str | Path | None = None,
) -> None:
    """Check that data match the model's signal contract; raise one error listing all problems.

    Parameters
    ----------
    pretrained : Pretrained
        The loaded model.
    ch_names : sequence of str, optional
        Channel rows of the data, in order.
    sfreq : float, optional
        Sampling rate of the data (Hz).
    n_times : int, optional
        Samples per window of the data.
    path : str or Path, optional
        The recording, named in the error.

    Raises
    ------
    ContractError
        Listing missing and extra channels, a different order, rate or window length, with
        what to do about each.
    """
    problems, hints = [], []
    if ch_names is not None:
        expected, given = list(pretrained.ch_names), [str(c) for c in ch_names]
        missing = [c for c in expected if c not in given]
        extra = [c for c in given if c not in expected]
        if missing or extra:
            problems.append(
                f"the model expects {len(expected)} channels, the data have {len(given)}: "
                f"missing {missing}, extra {extra}"
            )
            renamed = _respelled(extra, missing)
            if renamed:
                hints.append(
                    f"{len(renamed)} missing channel(s) are there under another spelling ("
                    + ", ".join(f"{a} → {b}" for a, b in list(renamed.items())[:4])
                    + (", ..." if len(renamed) > 4 else "")
                    + "): neurodecode.data.montage.canonical_name renames them"
                )
            hints.append(
                "map the recording onto the model's channels with "
                "neurodecode.data.montage.harmonise(recording, pretrained.ch_names) (missing "
                "ones are zero-filled and masked), or drop the extra ones"
            )
        elif given != expected:
            problems.append("the channels are the same but in another order")
            hints.append(f"reorder the rows to {expected}")
    if sfreq is not None and not math.isclose(float(sfreq), pretrained.sfreq, rel_tol=1e-6):
        problems.append(
            f"data sampled at {float(sfreq):g} Hz, the model at {pretrained.sfreq:g} Hz"
        )
        hints.append(f"resample to {pretrained.sfreq:g} Hz (the preprocessing config does that)")
    if n_times is not None and int(n_times) != pretrained.n_times:
        problems.append(f"windows of {int(n_times)} samples, the model takes {pretrained.n_times}")
        hints.append(
            f"cut windows of {pretrained.n_times} samples "
            f"({pretrained.n_times / pretrained.sfreq:g} s)"
        )
    if problems:
        raise ContractError(
            "data do not match the model's signal contract: " + "; ".join(problems),
            path=path,
            hint="; ".join(hints),
        )
