"""Download, locate or generate a dataset's files and verify them.

Every dataset lives under ``dataset_root(name)``: ``$NEURODECODE_HOME/<name>`` (default: the
user cache directory, ``pooch.os_cache("neurodecode")``). Where a file comes from depends on
the manifest's ``source.kind``:

``download``
    ``<base_url>/<path>``, or ``<mirror>/<dataset>/<path>`` when a mirror is set
    (``NEURODECODE_MIRROR`` or the ``mirror`` option), so a site can serve its own copy.
    Each file is streamed to a part file of this process under
    ``$NEURODECODE_HOME/.partial/<dataset>/<pid>/`` (retried on transient failures and
    resumed with an HTTP range request from what an interrupted transfer kept, the part
    file of a killed process included), checked against its SHA-256 (or its size where no
    hash is published) and only then moved into the cache. A file that fails the check is
    deleted. Manifests without per-file checksums name the dataset's own published checksum
    file (``source.checksums_file``), fetched first and used both as file list and as
    checksums. Archives are unpacked into a staging folder of this process, compared with
    the archive's member list, and only then moved into place with their marker.
``local``
    Files the user obtained under an agreement, under the folder named by the environment
    variable ``source.root_env`` or the ``root`` option; nothing is copied.
``generated``
    Written once by :func:`neurodecode.data.simulated.generate_dataset`.
``moabb``
    Downloaded by MOABB into the dataset root (needs the ``braindecode`` extra).

Every source but ``local`` holds a lock file in the dataset root
(``<home>/<dataset>/.neurodecode.lock``) while it works, so processes fetching the same
dataset at once take turns: the second finds the first one's verified files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlparse

import pooch
import requests
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from neurodecode.data.manifest import FileEntry, Manifest, check_relative_path, load_manifest
from neurodecode.data.simulated import generate_dataset
from neurodecode.errors import ChecksumError, ConfigError, DownloadError, ManifestError

logger = logging.getLogger(__name__)

HOME_ENV = "NEURODECODE_HOME"
MIRROR_ENV = "NEURODECODE_MIRROR"
_STAMP = ".neurodecode-verified.json"  # size, mtime and hash of files already verified
_LOCK = ".neurodecode.lock"
_CHUNK = 1 << 20  # hashing
_STREAM_CHUNK = 1 << 16  # downloads: at most this much of an interrupted transfer is lost
_TIMEOUT_S = (10, 60)  # connect, read


@dataclass
class RecordingEntry:
    """One recording of a fetched dataset, with what a reader needs to open it.

    Attributes
    ----------
    path : pathlib.Path
        The recording file.
    subject, session, run : str or None
        Identifiers read from the path by the manifest's ``structure.recording`` pattern.
    annotation_path : pathlib.Path or None
        The annotation file (e.g. CHB-MIT's ``chbNN-summary.txt``), if separate.
    dataset : str
        Manifest name.
    relative_path : str
        ``path`` relative to the dataset root, as the manifest lists it.
    companions : tuple of pathlib.Path
        Other files fetched with the recording (e.g. ``.seizures``, ``.edf.event``).
    metadata : dict of str to str
        Other named groups of the pattern (e.g. TUSZ ``split``, BIDS ``task``).
    error : str or None
        Why a file of the recording could not be downloaded (``keep_going=True`` only);
        the recording is then absent and a build records it as failed.
    """

    path: Path
    subject: str
    session: str | None = None
    run: str | None = None
    annotation_path: Path | None = None
    dataset: str = ""
    relative_path: str = ""
    companions: tuple[Path, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Selection:
    """Which recordings to fetch: identifiers per named group (``None``: all).

    Numeric identifiers compare as numbers, so ``subjects=[1]`` selects ``S001``'s ``"001"``.
    """

    subjects: tuple[str, ...] | None = None
    sessions: tuple[str, ...] | None = None
    runs: tuple[str, ...] | None = None
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def build(
        cls,
        subjects: Sequence[Any] | Any = None,
        sessions: Sequence[Any] | Any = None,
        runs: Sequence[Any] | Any = None,
        filters: Mapping[str, Sequence[Any] | Any] | None = None,
    ) -> Selection:
        """Normalise scalars and lists of ints or strings into a selection."""

        def norm(values: Any) -> tuple[str, ...] | None:
            if values is None:
                return None
            if isinstance(values, str | int):
                values = [values]
            return tuple(str(v) for v in values)

        groups = tuple(sorted((k, norm(v)) for k, v in (filters or {}).items() if v is not None))
        return cls(norm(subjects), norm(sessions), norm(runs), groups)

    def accepts(self, groups: Mapping[str, str | None]) -> bool:
        """Whether a recording with these identifiers is selected."""
        wanted = [("subject", self.subjects), ("session", self.sessions), ("run", self.runs)]
        for name, values in [*wanted, *self.groups]:
            if values is not None and not any(_same_id(groups.get(name), v) for v in values):
                return False
        return True


def _same_id(value: str | None, wanted: str) -> bool:
    if value is None:
        return False
    if value.isdigit() and wanted.isdigit():
        return int(value) == int(wanted)
    return value == wanted


def neurodecode_home() -> Path:
    """The cache root: ``$NEURODECODE_HOME`` or the user cache directory."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path(pooch.os_cache("neurodecode"))


def dataset_root(name: str) -> Path:
    """Folder holding one dataset's files in the cache: ``<home>/<name>``."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ConfigError(f"{name!r} is not a dataset name (lower case, digits, underscores)")
    return neurodecode_home() / name


@contextmanager
def folder_lock(folder: Path, what: str, prefix: str = "") -> Iterator[Path]:
    """Hold the lock file ``folder/<prefix>.neurodecode.lock`` (across processes) while
    working on ``what``.

    Another process holding it is waited for (a message says so); the lock is released
    when the block ends or the process dies, so a killed process never leaves it taken.

    Yields
    ------
    pathlib.Path
        ``folder``, created if absent.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / (prefix + _LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info("waiting for another process working on %s (lock %s)", what, lock.lock_file)
        lock.acquire()
    try:
        yield folder
    finally:
        lock.release()


def fetch_dataset(
    manifest: Manifest | str | Path,
    *,
    subjects: Sequence[Any] | Any = None,
    sessions: Sequence[Any] | Any = None,
    runs: Sequence[Any] | Any = None,
    filters: Mapping[str, Sequence[Any] | Any] | None = None,
    mirror: str | None = None,
    root: str | Path | None = None,
    retries: int = 3,
    keep_going: bool = False,
) -> list[RecordingEntry]:
    """Make a dataset's selected recordings available locally, verified.

    Parameters
    ----------
    manifest : Manifest or str or path-like
        The manifest, or a name / YAML path for :func:`~neurodecode.data.manifest.load_manifest`.
    subjects, sessions, runs : list or scalar, optional
        Identifiers to keep (``None``: all).
    filters : mapping, optional
        Further named groups of ``structure.recording`` to filter on (e.g. ``{"split":
        ["eval"]}`` for TUSZ).
    mirror : str, optional
        Base URL (or folder) of a site mirror; default ``$NEURODECODE_MIRROR``.
    root : str or path-like, optional
        Folder of a ``local`` dataset; default the environment variable the manifest names.
    retries : int
        Further attempts after a transient network failure.
    keep_going : bool
        Of a ``download`` source: a file that cannot be obtained or verified marks its
        recordings (or, for an archive, one entry named after the archive) with ``error``
        instead of stopping the fetch.

    Returns
    -------
    list of RecordingEntry
        One per selected recording, sorted by path.

    Raises
    ------
    DownloadError, ChecksumError
        A file cannot be obtained or does not match its checksum or size (without
        ``keep_going``).
    ManifestError
        A path of the manifest or of a published checksum list leaves the dataset root.
    ConfigError
        The selection matches no recording.
    """
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    selection = Selection.build(subjects, sessions, runs, filters)
    kind = manifest.source.kind
    if kind == "local":
        entries = _locate_local(manifest, selection, root)
    else:
        with folder_lock(dataset_root(manifest.name), manifest.name):
            if kind == "download":
                entries = _Downloader(manifest, mirror, retries).fetch(selection, keep_going)
            elif kind == "generated":
                entries = _generate(manifest, selection)
            else:
                entries = _fetch_moabb(manifest, selection)
    if not entries:
        raise ConfigError(
            f"no recording of {manifest.name!r} matches subjects={selection.subjects}, "
            f"sessions={selection.sessions}, runs={selection.runs}, "
            f"filters={dict(selection.groups)}"
        )
    return entries


# --------------------------------------------------------------------------- structure


def _match(manifest: Manifest, relative: str) -> dict[str, str | None] | None:
    found = re.fullmatch(manifest.structure.recording, relative)
    if found is None:
        return None
    return {k: (v or None) for k, v in found.groupdict().items()}


def _template(manifest: Manifest, template: str, relative: str, groups: Mapping) -> str:
    pure = PurePosixPath(relative)
    values = {**groups, "path": relative, "name": pure.name, "dir": str(pure.parent),
              "stem": str(pure.with_suffix(""))}  # fmt: skip
    values = {k: "" if v is None else v for k, v in values.items()}
    resolved = template.format(**values)
    try:
        return check_relative_path(str(PurePosixPath(resolved)))
    except ValueError as err:
        raise manifest.fail(f"template {template!r} gives an unsafe path: {err}") from err


def _join(manifest: Manifest, root: Path, relative: str) -> Path:
    """``root / relative`` for a path that must not leave ``root`` (else ManifestError)."""
    try:
        return root / check_relative_path(relative)
    except ValueError as err:
        raise manifest.fail(str(err)) from err


def _inside(manifest: Manifest, root: Path, relative: str) -> Path:
    """Like :func:`_join`, for a file about to be written: symbolic links are followed too."""
    target = _join(manifest, root, relative)
    if not target.resolve().is_relative_to(root.resolve()):
        raise manifest.fail(f"{relative!r} resolves outside the dataset root {root}")
    return target


def _entries(
    manifest: Manifest,
    root: Path,
    available: Iterable[str],
    selection: Selection,
) -> tuple[list[RecordingEntry], list[str]]:
    """Recording entries for the selected recordings among ``available`` relative paths,
    and every relative path they need (recording, annotation, companions that exist)."""
    available = set(available)
    entries, needed = [], []
    for relative in sorted(available):
        groups = _match(manifest, relative)
        if groups is None or not selection.accepts(groups):
            continue
        annotation = None
        if manifest.structure.annotation:
            annotation = _template(manifest, manifest.structure.annotation, relative, groups)
            annotation = annotation if annotation in available else None
        companions = [_template(manifest, t, relative, groups)
                      for t in manifest.structure.companions]  # fmt: skip
        companions = [c for c in companions if c in available]
        needed += [relative, *companions, *([annotation] if annotation else [])]
        entries.append(
            RecordingEntry(
                path=_join(manifest, root, relative),
                subject=groups.pop("subject") or "",
                session=groups.pop("session", None),
                run=groups.pop("run", None),
                annotation_path=_join(manifest, root, annotation) if annotation else None,
                dataset=manifest.name,
                relative_path=relative,
                companions=tuple(_join(manifest, root, c) for c in companions),
                metadata={k: v for k, v in groups.items() if v is not None},
            )
        )
    return entries, list(dict.fromkeys(needed))


def _walk(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- downloads


class _Transient(Exception):
    """A failure worth retrying (connection reset, timeout, 5xx, short transfer)."""


class _Downloader:
    """Downloads and verifies the files of one ``download`` manifest."""

    def __init__(self, manifest: Manifest, mirror: str | None, retries: int) -> None:
        self.manifest = manifest
        self.root = dataset_root(manifest.name)
        self.partials = neurodecode_home() / ".partial" / manifest.name
        self.partial = self.partials / str(os.getpid())
        self.retries = retries
        mirror = mirror or os.environ.get(MIRROR_ENV) or None
        if mirror:
            self.base = f"{mirror.rstrip('/')}/{manifest.name}"
        elif manifest.source.base_url:
            self.base = manifest.source.base_url.rstrip("/")
        else:
            raise DownloadError(
                f"{manifest.name!r} has no public download URL",
                path=manifest.manifest_path,
                hint=f"set {MIRROR_ENV} (or mirror=) to a mirror serving "
                f"<mirror>/{manifest.name}/<file>; {manifest.access.notes.strip()}",
            )
        self.stamp_path = self.root / _STAMP
        try:
            self.stamp = json.loads(self.stamp_path.read_text())
        except (OSError, ValueError):
            self.stamp = {}

    def url(self, relative: str) -> str:
        """Where ``relative`` is downloaded from."""
        return f"{self.base}/{quote(relative)}"

    def fetch(self, selection: Selection, keep_going: bool = False) -> list[RecordingEntry]:
        """Entries of the selected recordings, their files verified in the dataset root."""
        catalogue = self.catalogue()
        failed: dict[str, str] = {}
        try:
            if self.manifest.source.archives:
                for entry in catalogue.values():
                    if self.attempt(entry, failed, keep_going):
                        self.extract(entry, self.root / entry.path)
                entries, _ = _entries(self.manifest, self.root, self.extracted(), selection)
                return entries + [self.failed_archive(a, e) for a, e in failed.items()]
            entries, needed = _entries(self.manifest, self.root, catalogue, selection)
            for relative in tqdm(needed, desc=self.manifest.name, unit="file", disable=None):
                self.attempt(catalogue[relative], failed, keep_going)
            for entry in entries:
                files = [entry.path, entry.annotation_path, *entry.companions]
                names = [f.relative_to(self.root).as_posix() for f in files if f is not None]
                entry.error = "; ".join(failed[n] for n in names if n in failed) or None
            return entries
        finally:
            self.save_stamp()
            _remove_empty_folders(self.partial, stop=self.partials)

    def attempt(self, entry: FileEntry, failed: dict[str, str], keep_going: bool) -> bool:
        """:meth:`ensure` the file; with ``keep_going``, note a failure in ``failed``."""
        try:
            self.ensure(entry)
        except DownloadError as err:
            if not keep_going:
                raise
            failed[entry.path] = " ".join(str(err).split())
            logger.error("%s", failed[entry.path])
            return False
        return True

    def failed_archive(self, archive: str, reason: str) -> RecordingEntry:
        """The entry standing for the recordings of an archive that could not be fetched."""
        return RecordingEntry(path=self.root / archive, subject="", dataset=self.manifest.name,
                              relative_path=archive, error=reason)  # fmt: skip

    def catalogue(self) -> dict[str, FileEntry]:
        """Files of the dataset: the manifest's, completed by a published checksum list."""
        catalogue = {entry.path: entry for entry in self.manifest.files}
        if self.manifest.source.checksums_file:
            listed = self.published_checksums(self.manifest.source.checksums_file)
            catalogue = {**listed, **catalogue}
        return catalogue

    def published_checksums(self, relative: str) -> dict[str, FileEntry]:
        """Parse a ``sha256sum``-style list (``<hash>  <path>``), fetching it if needed."""
        path = self.ensure(FileEntry(path=relative))
        catalogue = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                digest, name = line.split(maxsplit=1)
                entry = FileEntry(path=name.strip().lstrip("*"), sha256=digest)
            except ValueError as err:
                raise ManifestError(
                    f"line {number} of the published checksum list is not '<sha256> <path>' "
                    f"or names an unsafe path: {line!r}",
                    path=self.url(relative),
                ) from err
            catalogue[entry.path] = entry
        return catalogue

    def ensure(self, entry: FileEntry) -> Path:
        """Return the verified cached file, downloading it if absent or damaged."""
        target = _inside(self.manifest, self.root, entry.path)
        if target.is_file():
            if self.cached_ok(entry, target):
                return target
            logger.warning("cached %s does not match its checksum; downloading again", target)
        part = _inside(self.manifest, self.partial, entry.path + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        self.adopt_part(entry.path + ".part", part)
        url = self.url(entry.path)
        self.download(url, part, entry.path)
        try:
            self.verify(entry, part, url)
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, target)
        self.remember(entry, target)
        return target

    def adopt_part(self, relative: str, part: Path) -> None:
        """Continue from the longest part file another process left (killed mid-transfer).

        The dataset lock is held, so no other process is writing one.
        """
        if not self.partials.is_dir():
            return
        others = [f / relative for f in self.partials.iterdir()
                  if f.name.isdigit() and f != self.partial]  # fmt: skip
        others = sorted((p for p in others if p.is_file()), key=lambda p: p.stat().st_size)
        if others and others[-1].stat().st_size > (part.stat().st_size if part.exists() else 0):
            os.replace(others[-1], part)
            _remove_empty_folders(others[-1].parent, stop=self.partials)

    def cached_ok(self, entry: FileEntry, path: Path) -> bool:
        stat = path.stat()
        if entry.size is not None and stat.st_size != entry.size:
            return False
        if entry.sha256 is None:
            return True
        known = self.stamp.get(entry.path)
        if known == [stat.st_size, stat.st_mtime_ns, entry.sha256]:
            return True
        if _sha256(path) != entry.sha256:
            return False
        self.remember(entry, path)
        return True

    def remember(self, entry: FileEntry, path: Path) -> None:
        if entry.sha256 is not None:
            stat = path.stat()
            self.stamp[entry.path] = [stat.st_size, stat.st_mtime_ns, entry.sha256]

    def save_stamp(self) -> None:
        if not self.stamp:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.stamp_path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(self.stamp, sort_keys=True))
        os.replace(temporary, self.stamp_path)

    def verify(self, entry: FileEntry, path: Path, url: str) -> None:
        """Compare a downloaded file with its published SHA-256, else its size."""
        size = path.stat().st_size
        if entry.size is not None and size != entry.size:
            raise ChecksumError(
                f"{entry.path}: size differs (expected {entry.size} bytes, got {size}); "
                "the download was deleted",
                path=url,
            )
        if entry.sha256 is not None:
            digest = _sha256(path)
            if digest != entry.sha256:
                raise ChecksumError(
                    f"{entry.path}: SHA-256 differs (expected {entry.sha256}, got {digest}); "
                    "the download was deleted",
                    path=url,
                    hint="the server's copy is damaged or not the published file",
                )
        elif entry.size is None:
            logger.warning("%s has no published checksum or size; not verified", entry.path)

    def download(self, url: str, part: Path, relative: str) -> None:
        """Stream ``url`` into ``part``, resuming and retrying transient failures."""
        for attempt in range(self.retries + 1):
            try:
                if urlparse(url).scheme in ("http", "https"):
                    _http_download(url, part, relative)
                else:
                    _copy_local(url, part, relative)
                return
            except _Transient as err:
                if attempt == self.retries:
                    raise DownloadError(
                        f"{relative}: download failed after {attempt + 1} attempts: {err}",
                        path=url,
                        hint="run the fetch again to resume",
                    ) from err
                delay = min(0.5 * 2**attempt, 8.0)
                logger.warning("%s: %s; retrying in %.1f s", url, err, delay)
                time.sleep(delay)

    def extract(self, entry: FileEntry, archive: Path) -> None:
        """Unpack ``Z.zip`` into ``Z/`` (once per verified archive), atomically.

        The archive is unpacked into a staging folder of this process and compared with its
        member list; only a complete copy is moved into place, with its marker.
        """
        target = _inside(self.manifest, self.root, str(PurePosixPath(entry.path).with_suffix("")))
        marker = target / ".neurodecode-extracted"
        stamp = entry.sha256 or str(entry.size)
        if marker.is_file() and marker.read_text() == stamp:
            if not _missing_members(archive, target):
                return
            logger.warning("%s lacks files of %s; extracting it again", target, archive.name)
        staging = target.with_name(f".{target.name}.extracting.{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            pooch.Unzip(extract_dir=staging.name)(str(archive), "download", None)
            missing = _missing_members(archive, staging)
            if missing:
                raise DownloadError(
                    f"{entry.path}: {len(missing)} member(s) missing or truncated after "
                    f"extraction, e.g. {missing[0]}",
                    path=archive,
                    hint="check the free disk space, then fetch again",
                )
            (staging / marker.name).write_text(stamp)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def extracted(self) -> list[str]:
        folders = [str(PurePosixPath(e.path).with_suffix("")) for e in self.manifest.files]
        return [f"{folder}/{name}" for folder in folders for name in _walk(self.root / folder)]


def _missing_members(archive: Path, folder: Path) -> list[str]:
    """Files of the zip ``archive`` absent from ``folder`` or of another size there."""
    with zipfile.ZipFile(archive) as bundle:
        members = [m for m in bundle.infolist() if not m.is_dir()]
    missing = []
    for member in members:
        path = folder / member.filename
        if not path.is_file() or path.stat().st_size != member.file_size:
            missing.append(member.filename)
    return missing


def _remove_empty_folders(folder: Path, stop: Path) -> None:
    """Remove ``folder``'s empty subfolders, then ``folder`` and its parents up to ``stop``
    while they are empty."""
    if not folder.is_dir():
        return
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _http_download(url: str, part: Path, relative: str) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        with requests.get(url, headers=headers, stream=True, timeout=_TIMEOUT_S) as response:
            status = response.status_code
            if status == 416:  # our partial file is complete or longer than the file
                part.unlink()
                raise _Transient("the partial download does not fit the file; restarting")
            if status >= 500 or status == 429:
                raise _Transient(f"HTTP {status} {response.reason}")
            if status >= 400:
                raise DownloadError(f"{relative}: HTTP {status} {response.reason}", path=url)
            resumed = offset > 0 and status == 206
            expected = int(response.headers.get("Content-Length", -1))
            written = 0
            with (
                open(part, "ab" if resumed else "wb") as stream,
                tqdm(total=None if expected < 0 else expected + (offset if resumed else 0),
                     initial=offset if resumed else 0, unit="B", unit_scale=True,
                     desc=relative, leave=False, disable=None) as bar,
            ):  # fmt: skip
                for chunk in response.iter_content(_STREAM_CHUNK):
                    stream.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
    except requests.exceptions.RequestException as err:
        raise _Transient(f"{type(err).__name__}: {err}") from err
    if 0 <= expected != written:
        raise _Transient(f"transfer ended after {written} of {expected} bytes")


def _copy_local(url: str, part: Path, relative: str) -> None:
    """A mirror on a file system (``file://`` URL or plain folder)."""
    source = Path(unquote(urlparse(url).path))
    if not source.is_file():
        raise DownloadError(f"{relative}: not found in the mirror", path=source)
    shutil.copyfile(source, part)


# --------------------------------------------------------------------------- other sources


def _locate_local(
    manifest: Manifest, selection: Selection, root: str | Path | None
) -> list[RecordingEntry]:
    env = manifest.source.root_env
    configured = root or os.environ.get(env or "")
    hint = f"{manifest.access.notes.strip()}"
    if not configured:
        raise DownloadError(
            f"{manifest.name!r} is not downloadable; its local root is not configured",
            path=manifest.manifest_path,
            hint=f"set {env} or pass root=<folder>. {hint}",
        )
    folder = Path(configured).expanduser()
    if not folder.is_dir():
        raise DownloadError(f"the {manifest.name} root folder does not exist", path=folder,
                            hint=hint)  # fmt: skip
    entries, _ = _entries(manifest, folder, _walk(folder), selection)
    return entries


def _generate(manifest: Manifest, selection: Selection) -> list[RecordingEntry]:
    params = json.dumps(manifest.source.generator_params, sort_keys=True, default=str)
    root = dataset_root(manifest.name) / hashlib.sha256(params.encode()).hexdigest()[:12]
    generate_dataset(root, manifest)
    entries, _ = _entries(manifest, root, _walk(root), selection)
    return entries


def _moabb_dataset(name: str) -> Any:
    """An instance of ``moabb.datasets.<name>`` (imported only here)."""
    try:
        import moabb.datasets
    except ImportError as err:
        raise ConfigError(
            "MOABB is not installed", hint="pip install 'neurodecode[braindecode]'"
        ) from err
    try:
        return getattr(moabb.datasets, name)()
    except AttributeError as err:
        raise ConfigError(f"MOABB has no dataset {name!r}") from err


def _fetch_moabb(manifest: Manifest, selection: Selection) -> list[RecordingEntry]:
    dataset = _moabb_dataset(manifest.source.moabb_dataset)
    root = dataset_root(manifest.name)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for subject in dataset.subject_list:
        if selection.subjects is None or any(_same_id(str(subject), s)
                                             for s in selection.subjects):  # fmt: skip
            try:
                paths += dataset.data_path(subject, path=str(root), update_path=False)
            except Exception as err:  # MOABB raises whatever its downloader raised
                raise DownloadError(f"MOABB could not fetch subject {subject}: {err}",
                                    path=manifest.source.moabb_dataset) from err  # fmt: skip
    relative = [Path(p).resolve().relative_to(root.resolve()).as_posix() for p in paths]
    entries, _ = _entries(manifest, root, relative, selection)
    return entries
