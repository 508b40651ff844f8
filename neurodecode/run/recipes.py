"""The recipes and their composition: registering ``recipes/*.yaml`` as Hydra's config
group ``recipe``, composing ``configs/train.yaml`` with them, the one-line summaries of
``--help``, and plain-words reports of an unknown override key and of a run that fails
(:func:`plain_failures`: one paragraph, with the ways out of a dataset that cannot be
obtained)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import lightning  # noqa: F401  (attaches its console handlers on import, see below)
import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import ConfigAttributeError, ConfigKeyError

from neurodecode.data.fetch import HOME_ENV, MIRROR_ENV, dataset_root
from neurodecode.data.manifest import Manifest, load_manifest
from neurodecode.errors import (
    ConfigError,
    DownloadError,
    NeurodecodeError,
    did_you_mean,
    one_paragraph,
)
from neurodecode.resources import resource_dir

RECIPE_HEADER = "# @package _global_"


def register_recipes() -> list[str]:
    """Put every ``recipes/*.yaml`` into Hydra's config group ``recipe`` (package ``_global_``).

    The recipes live in their own top-level folder (where people look for them), not under
    ``configs/``, so they are registered through Hydra's ConfigStore; this works from a
    source checkout and from an installed wheel alike. Registering again replaces them.
    """
    store = ConfigStore.instance()
    names = []
    for path in sorted(resource_dir("recipes").glob("*.yaml")):
        text = path.read_text()
        if not text.lstrip().startswith(RECIPE_HEADER):
            raise ConfigError(f"a recipe must start with '{RECIPE_HEADER}'", path=path)
        node = OmegaConf.create(yaml.safe_load(text) or {})
        store.store(group="recipe", name=path.stem, node=node, package="_global_")
        names.append(path.stem)
    return names


def compose_with_hydra(overrides: Sequence[str]) -> tuple[DictConfig, str]:
    """The composed config without Hydra's own keys, and the name of the chosen recipe
    (the recipes must be registered, :func:`register_recipes`)."""
    with initialize_config_dir(str(resource_dir("configs")), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    recipe = str(cfg.hydra.runtime.choices.recipe)
    with open_dict(cfg):
        cfg.pop("hydra")
    return cfg, recipe


def override_errors(args: Sequence[str]) -> str | None:
    """One paragraph on the first unknown key or group option among ``args``, or None.

    Only plain ``key=value`` overrides are checked (a multirun sweep, ``--cfg`` and other
    flags are left to Hydra, as is a missing ``recipe=``, which Hydra lists itself).
    """
    if any(a.startswith("-") and a not in ("--cfg", "-c", "--resolve") for a in args):
        return None
    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    try:
        compose_with_hydra(overrides)
    except MissingConfigException as error:
        group, _, name = str(error.missing_cfg_file).rpartition("/")
        if not group or not error.options:
            return None
        return (
            f"error: the config group '{group}' has no option '{name}'; "
            f"{did_you_mean(name, error.options)}"
        )
    except ConfigCompositionException as error:
        cause = error.__cause__
        if not isinstance(cause, ConfigAttributeError | ConfigKeyError) or not cause.full_key:
            return None
        return _unknown_key(str(cause.full_key), overrides)
    return None


def _unknown_key(full_key: str, overrides: Sequence[str]) -> str:
    """The paragraph for ``full_key``, with the known keys beside it; the way to add a new
    key only when no known key is close (a typo given a ``+`` fails later)."""
    parent, _, name = full_key.rpartition(".")
    others = [o for o in overrides if o.partition("=")[0].lstrip("+~") != full_key]
    try:
        cfg = compose_with_hydra(others)[0]
        node = OmegaConf.select(cfg, parent) if parent else cfg
        choices = list(node.keys()) if isinstance(node, DictConfig) else []
    except ConfigCompositionException:
        choices = []
    where = f"'{parent}'" if parent else "the top level of the config"
    hint = did_you_mean(name, choices)
    if not hint.startswith("did you mean"):
        hint += f"; a new key is added with a leading '+', +{full_key}=..."
    return (
        f"error: unknown config key '{full_key}': {where} has no key '{name}'; {hint} "
        "('python -m neurodecode.train recipe=<name> --cfg job' prints every key)"
    )


def usage() -> str:
    """``--help`` without a recipe: the recipes, one line each, and how to run them."""
    lines = [
        "Train and evaluate one recipe (neurodecode.train).",
        "",
        "usage: python -m neurodecode.train recipe=<name> [key=value ...]",
        "",
        "recipes:",
    ]
    for path in sorted(resource_dir("recipes").glob("*.yaml")):
        lines.append(f"  {path.stem:16s} {recipe_summary(path.read_text())}")
    lines += [
        "",
        "examples:",
        "  python -m neurodecode.train recipe=seizure data=simulated trainer.max_epochs=3 seed=1",
        "  python -m neurodecode.train recipe=motor_imagery --help     # its config groups",
        "  python -m neurodecode.train recipe=motor_imagery --cfg job  # the resolved config",
        "",
        "Any key can be overridden (key=value; +key=value adds a new one). From Python:",
        '  neurodecode.train.run_recipe(["recipe=seizure", "data=simulated"])',
        "Documentation: docs/recipes.md (recipes, datasets, metrics), docs/configuration.md.",
    ]
    return "\n".join(lines)


def recipe_summary(text: str) -> str:
    """The first phrase of the comment block under a recipe's ``# @package`` line."""
    comment = []
    for line in text.splitlines()[1:]:
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("# ").strip())
    phrase = " ".join(comment)
    for stop in (": ", ". "):
        phrase = phrase.split(stop)[0]
    return phrase.rstrip(".")


def log_lightning_through_root() -> None:
    """Let Lightning's log records reach the console once, through the root logger.

    ``import lightning`` attaches a console handler (stderr, ``INFO: ...``) to the
    ``lightning`` logger, and ``lightning.pytorch`` / ``lightning.fabric`` attach one each
    with propagation off when the root logger has no handler yet. Records still propagate
    from ``lightning`` to the root logger, where Hydra's job logging prints them (stdout)
    and writes ``train.log``: every Lightning line came out twice.
    """
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        lightning_logger = logging.getLogger(name)
        for handler in list(lightning_logger.handlers):
            lightning_logger.removeHandler(handler)
        lightning_logger.propagate = True


@contextmanager
def plain_failures(cfg: DictConfig) -> Iterator[None]:
    """Turn a :class:`~neurodecode.errors.NeurodecodeError` of the block into one paragraph.

    The paragraph (:func:`failure_paragraph`) goes to stderr, and the process exits with
    status 1 (2 for a config error), without a traceback: this is the command line's
    boundary, so the Python API (:func:`neurodecode.train.run_recipe`) does not use it.
    """
    try:
        yield
    except NeurodecodeError as error:
        print(failure_paragraph(error, cfg), file=sys.stderr)
        raise SystemExit(2 if isinstance(error, ConfigError) else 1) from None


def failure_paragraph(error: NeurodecodeError, cfg: DictConfig) -> str:
    """``error: <what failed>``; for a dataset that cannot be obtained, also its name, its
    size and the ways out (simulated data, a mirror, a copy of the files)."""
    text = one_paragraph(error)
    manifest = _failed_manifest(error, cfg) if isinstance(error, DownloadError) else None
    if manifest is not None:
        text = (
            f"error: the dataset {manifest.name!r} ({manifest.approximate_size}) could not be "
            f"obtained: {text.removeprefix('error: ').rstrip('.')}. "
            f"{ways_out(manifest, in_mixture=bool(cfg.data.get('datasets')))}"
        )
    return text


def ways_out(manifest: Manifest, in_mixture: bool = False) -> str:
    """What a person can do when ``manifest``'s files cannot be obtained, in one sentence
    (``in_mixture``: the dataset is one of a pretraining mixture's, ``cfg.data.datasets``)."""
    name, source = manifest.name, manifest.source
    ways = [
        f"leave it out with data.datasets.{name}.weight=0 (data.datasets.simulated.weight=1 "
        "adds generated recordings)"
        if in_mixture
        else "train on generated recordings with data=simulated"
    ]
    if source.kind == "download":
        ways.append(f"set {MIRROR_ENV}=<url or folder> to a mirror serving <mirror>/{name}/<file>")
    if source.kind == "local" and source.root_env:
        ways.append(f"set {source.root_env}=<folder> to the folder holding the files")
    if source.kind in ("download", "moabb"):
        ways.append(
            f"copy the files into {dataset_root(name)} ({HOME_ENV}=<folder> chooses the "
            f"folder that holds {name}/)"
        )
    return "Ways out: " + "; or ".join(ways) + "."


def _failed_manifest(error: DownloadError, cfg: DictConfig) -> Manifest | None:
    """The manifest, among the datasets of ``cfg.data``, whose file ``error`` names."""
    datasets = cfg.data.get("datasets")
    names = [str(cfg.data.name)] if not datasets else [
        str(name) for name, spec in datasets.items() if spec.get("weight", 1) > 0
    ]  # fmt: skip
    manifests = []
    for name in names:
        try:
            manifests.append(load_manifest(name))
        except NeurodecodeError:  # a changed or unknown manifest: no details to add
            continue
    where = error.path or ""
    for manifest in manifests:
        if (
            where == str(manifest.manifest_path)
            or f"/{manifest.name}/" in where
            or (manifest.base_url and where.startswith(manifest.base_url.rstrip("/")))
        ):
            return manifest
    return manifests[0] if len(names) == 1 and manifests else None
