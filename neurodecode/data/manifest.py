"""Dataset manifests: what a dataset is, validated when it is loaded.

A manifest is one YAML file in ``data_manifests/``. It says where the files come from
(``source``), which files exist (``files``, with size and SHA-256 where they are published),
how subject, session and run are read from a file's path (``structure``), what the
annotations mean (``annotation_format``, ``label_map``), how to split the data, and under
which licence and access terms it may be used. Every path is checked to stay inside the
dataset's cache root; a manifest that could write elsewhere is refused.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from neurodecode.errors import ManifestError, UnknownNameError
from neurodecode.resources import resource_dir

SourceKind = Literal["download", "local", "generated", "moabb"]
_SHA256 = re.compile(r"[0-9a-f]{64}")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when built


def check_relative_path(path: str) -> str:
    """Return ``path`` if it is a plain relative POSIX path that cannot leave its root.

    Raises
    ------
    ValueError
        If the path is absolute (also ``C:...``), contains a backslash, or has an empty,
        ``.`` or ``..`` component.
    """
    if (
        path.startswith("/")
        or "\\" in path
        or re.match(r"^[A-Za-z]:", path)
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"{path!r} is not a relative path inside the dataset's root")
    return path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Strict):
    """One file of a dataset: its path inside the dataset, size in bytes, SHA-256."""

    path: str
    size: int | None = Field(default=None, ge=0)
    sha256: str | None = None

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        return check_relative_path(value)

    @field_validator("sha256")
    @classmethod
    def _check_sha256(cls, value: str | None) -> str | None:
        if value is not None and not _SHA256.fullmatch(value.lower()):
            raise ValueError(f"{value!r} is not a SHA-256 hex digest (64 hex characters)")
        return None if value is None else value.lower()


class Source(_Strict):
    """Where the files come from.

    ``download``: ``base_url`` (or a mirror) + each file's path; without ``base_url`` only
    a mirror can serve it (no stable public URL). ``local``: a folder the user
    obtained under an agreement, named by the environment variable ``root_env`` or the
    ``root`` option; a site mirror may serve it too. ``generated``: written by
    :func:`neurodecode.data.simulated.generate_dataset` from ``generator_params``.
    ``moabb``: downloaded through MOABB's dataset class ``moabb_dataset``.
    """

    kind: SourceKind
    base_url: str | None = None
    checksums_file: str | None = None
    checksums_are_ours: bool = False
    archives: Literal["unzip"] | None = None
    root_env: str | None = None
    moabb_dataset: str | None = None
    generator_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("checksums_file")
    @classmethod
    def _check_checksums_file(cls, value: str | None) -> str | None:
        return None if value is None else check_relative_path(value)

    @model_validator(mode="after")
    def _check_kind_fields(self) -> Source:
        required = {"local": "root_env", "moabb": "moabb_dataset"}
        needed = required.get(self.kind)
        if needed and not getattr(self, needed):
            raise ValueError(f"a {self.kind!r} source needs {needed!r}")
        if self.kind == "generated" and not self.generator_params:
            raise ValueError("a 'generated' source needs 'generator_params'")
        return self


class Structure(_Strict):
    """How recordings and their identifiers are found among a dataset's files.

    ``recording`` is a regular expression matched against the whole relative path of every
    file; a match is a recording, and its named groups give ``subject`` (required),
    ``session`` and ``run`` (optional) and any other metadata. ``annotation`` and
    ``companions`` are templates (``str.format`` fields: ``path``, ``stem``, ``dir``,
    ``name`` and the named groups) for the annotation file and for extra files fetched with
    each recording when they exist (e.g. ``{path}.seizures``).
    """

    recording: str
    annotation: str | None = None
    companions: list[str] = Field(default_factory=list)

    @field_validator("recording")
    @classmethod
    def _check_regex(cls, value: str) -> str:
        try:
            pattern = re.compile(value)
        except re.error as err:
            raise ValueError(f"'recording' is not a valid regular expression: {err}") from err
        if "subject" not in pattern.groupindex:
            raise ValueError("'recording' must have a named group (?P<subject>...)")
        return value

    @model_validator(mode="after")
    def _check_templates(self) -> Structure:
        known = {"path", "stem", "dir", "name", *re.compile(self.recording).groupindex}
        for template in [self.annotation, *self.companions]:
            if template is None:
                continue
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
            if not fields <= known:
                raise ValueError(f"template {template!r} uses unknown fields {fields - known}")
        return self


class RunLabels(_Strict):
    """What raw event codes mean in some runs (eegmmidb: T0/T1/T2 depend on the run)."""

    runs: list[int]
    task: str
    labels: dict[str, str]


class Splits(_Strict):
    """Default split: grouping unit and either explicit members or fractions.

    ``by`` is ``subject``, ``session``, ``recording`` or the name of a ``structure`` group
    holding a published split (TUSZ: ``split`` with values train/dev/eval).
    """

    by: str = "subject"
    train: list[str] | None = None
    valid: list[str] | None = None
    test: list[str] | None = None
    valid_fraction: float | None = Field(default=None, ge=0, lt=1)
    test_fraction: float | None = Field(default=None, ge=0, lt=1)
    note: str | None = None


class Access(_Strict):
    """Who may use the data and what is needed to obtain it."""

    requires_credentials: bool = False
    data_use_agreement: bool = False
    notes: str


class Manifest(_Strict):
    """A validated dataset manifest (see the module docstring and ``docs/datasets.md``).

    ``label_map`` maps event descriptions, as the ``annotation_format`` parser of
    :mod:`neurodecode.data.annotations` gives them, to the class labels trained on;
    ``label_map_by_run`` documents raw codes whose meaning depends on the run.
    ``manifest_path`` is the YAML file it was loaded from, named in errors.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    version: str | None = None
    description: str
    licence: str
    citation: str
    homepage: str
    approximate_size: str
    source: Source
    files: list[FileEntry] = Field(default_factory=list)
    format: str
    reference: str
    montage: str
    n_channels: int | None = Field(default=None, gt=0)
    channels: list[str] | None = None  # the dataset's channel set, when not the common one
    sfreq: float | None = Field(default=None, gt=0)
    annotation_format: str | None = None
    label_map: dict[str, str] = Field(default_factory=dict)
    label_map_by_run: list[RunLabels] = Field(default_factory=list)
    structure: Structure
    splits: Splits
    access: Access
    manifest_path: Path | None = Field(default=None, exclude=True)

    @property
    def base_url(self) -> str | None:
        """The dataset's own download URL (``source.base_url``)."""
        return self.source.base_url

    @model_validator(mode="after")
    def _check_files(self) -> Manifest:
        seen: set[str] = set()
        for entry in self.files:
            if entry.path in seen:
                raise ValueError(f"file {entry.path!r} is listed twice")
            seen.add(entry.path)
        if self.source.archives and not self.files:
            raise ValueError("'source.archives' needs the archives listed under 'files'")
        return self

    def events_for_run(self, run: int | str) -> dict[str, str]:
        """Raw event code → event description for one run (``label_map_by_run``; empty when
        the dataset's codes do not depend on the run)."""
        for group in self.label_map_by_run:
            if int(run) in group.runs:
                return dict(group.labels)
        return {}

    def fail(self, reason: str, hint: str | None = None) -> ManifestError:
        """A :class:`ManifestError` naming this manifest's file (or its name)."""
        return ManifestError(
            reason, path=self.manifest_path or f"manifest {self.name!r}", hint=hint
        )


def list_manifests() -> list[str]:
    """Names of the manifests shipped in ``data_manifests/``, sorted."""
    return sorted(p.stem for p in resource_dir("data_manifests").glob("*.yaml"))


def manifest_file(name_or_path: str | Path) -> Path:
    """The YAML file of a shipped manifest name, or ``name_or_path`` itself if it is a file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    candidate = resource_dir("data_manifests") / f"{name_or_path}.yaml"
    if not candidate.exists():
        raise UnknownNameError(
            f"no dataset manifest named {str(name_or_path)!r}; "
            f"valid names: {', '.join(list_manifests())}"
        )
    return candidate


def load_manifest(name_or_path: str | Path) -> Manifest:
    """Load and validate a manifest by dataset name or YAML path.

    Parameters
    ----------
    name_or_path : str or path-like
        A name from :func:`list_manifests` or the path of a YAML file.

    Returns
    -------
    Manifest

    Raises
    ------
    ManifestError
        If the file cannot be parsed or a field is missing, malformed or unsafe; the
        message names the file and every offending field.
    UnknownNameError
        If a name matches no shipped manifest.
    """
    path = manifest_file(name_or_path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError) as err:
        raise ManifestError(f"cannot read the manifest: {err}", path=path) from err
    if not isinstance(data, dict):
        raise ManifestError("a manifest must be a YAML mapping", path=path)
    try:
        return Manifest.model_validate({**data, "manifest_path": path})
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<top>'}: {e['msg']}" for e in err.errors()
        )
        raise ManifestError(f"invalid manifest: {problems}", path=path) from err
