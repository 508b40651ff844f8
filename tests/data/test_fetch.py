"""Downloads against loopback servers: verification, atomicity, cache reuse, other sources."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path

import pytest

import neurodecode.data.fetch as fetch
from neurodecode.data.__main__ import main
from neurodecode.data.fetch import RecordingEntry, dataset_root, fetch_dataset
from neurodecode.data.manifest import load_manifest
from neurodecode.errors import ChecksumError, ConfigError, DownloadError, ManifestError
from tests.conftest import require_shared

pytestmark = pytest.mark.network

MNE_CHECKSUMS = dict(
    line.split()
    for line in files("mne").joinpath("data", "eegbci_checksums.txt").read_text().splitlines()
    if line.strip()
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_files(home: Path) -> list[str]:
    """Files under ``home`` but the datasets' lock files (which a fetch leaves)."""
    files = (p for p in home.rglob("*") if p.is_file() and p.name != ".neurodecode.lock")
    return sorted(p.relative_to(home).as_posix() for p in files)


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any HTTP request fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected network access: {args}")

    monkeypatch.setattr(fetch.requests, "get", refuse)


def test_eegmmidb_from_mirror_matches_published_sha256(
    neurodecode_home: Path, mirror_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    entries = fetch_dataset("eegmmidb", subjects=[1], runs=[4, 8, 12])
    assert [(e.subject, e.run) for e in entries] == [("001", "04"), ("001", "08"), ("001", "12")]
    for entry in entries:
        assert entry.path == neurodecode_home / "eegmmidb" / entry.relative_path
        assert sha256(entry.path) == MNE_CHECKSUMS[entry.relative_path]
        assert entry.annotation_path is None  # annotations are inside the EDF+ file
        (event,) = entry.companions
        assert sha256(event) == MNE_CHECKSUMS[f"{entry.relative_path}.event"]
    assert not [p for p in (neurodecode_home / ".partial").rglob("*") if p.is_file()]


def test_second_fetch_uses_the_cache_and_repairs_damage(
    neurodecode_home: Path, mirror_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fetch_dataset("eegmmidb", subjects=[1], runs=[4], mirror=mirror_url)
    real_get = fetch.requests.get
    calls: list[str] = []
    monkeypatch.setattr(
        fetch.requests, "get", lambda url, **kw: calls.append(url) or real_get(url, **kw)
    )
    assert fetch_dataset("eegmmidb", subjects=[1], runs=[4], mirror=mirror_url) == first
    assert calls == []
    first[0].path.write_bytes(b"damaged")
    fetch_dataset("eegmmidb", subjects=[1], runs=[4], mirror=mirror_url)
    assert calls == [f"{mirror_url}/eegmmidb/S001/S001R04.edf"]
    assert sha256(first[0].path) == MNE_CHECKSUMS["S001/S001R04.edf"]


def test_truncated_file_under_a_real_name_is_refused_and_not_kept(
    neurodecode_home: Path, tmp_path: Path, serve_directory: Callable[[Path], str]
) -> None:
    fault = require_shared("faults/S001R02_truncated.edf")
    mirror = tmp_path / "mirror"
    (mirror / "eegmmidb" / "S001").mkdir(parents=True)
    shutil.copy(fault, mirror / "eegmmidb" / "S001" / "S001R02.edf")
    url = serve_directory(mirror)
    with pytest.raises(ChecksumError) as info:
        fetch_dataset("eegmmidb", subjects=[1], runs=[2], mirror=url)
    message = str(info.value)
    assert f"{url}/eegmmidb/S001/S001R02.edf" in message
    assert "S001/S001R02.edf" in message
    assert MNE_CHECKSUMS["S001/S001R02.edf"] in message  # expected
    assert sha256(fault) in message  # got
    assert cache_files(neurodecode_home) == []


def test_missing_file_gives_404_naming_the_url(neurodecode_home: Path, mirror_url: str) -> None:
    with pytest.raises(DownloadError) as info:  # run 2 is missing from the mirror on purpose
        fetch_dataset("eegmmidb", subjects=[1], runs=[2], mirror=mirror_url)
    assert not isinstance(info.value, ChecksumError)
    assert f"{mirror_url}/eegmmidb/S001/S001R02.edf" in str(info.value)
    assert "404" in str(info.value)
    assert cache_files(neurodecode_home) == []


def test_mirror_on_a_file_system(neurodecode_home: Path) -> None:
    mirror = require_shared("mirror")
    (entry,) = fetch_dataset("eegmmidb", subjects=[1], runs=[6], mirror=str(mirror))
    assert sha256(entry.path) == MNE_CHECKSUMS["S001/S001R06.edf"]


def test_cli_fetches_and_reports_bad_options(
    neurodecode_home: Path, mirror_url: str, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)
    assert main(["fetch", "eegmmidb", "subjects=[1]", "runs=[4,8,12]"]) == 0
    assert "3 recording(s)" in capsys.readouterr().out
    assert (neurodecode_home / "eegmmidb" / "S001" / "S001R12.edf").is_file()
    assert main(["fetch", "eegmmidb", "subject=[1]"]) == 1
    assert "unknown option(s) ['subject'] (subject: did you mean 'subjects'?)" in (
        capsys.readouterr().err
    )
    assert main(["fetch", "eegmmidb", "subjects=[999]"]) == 1
    assert "no recording" in capsys.readouterr().err


def _chbmit_mirror(tmp_path: Path) -> Path:
    """Real CHB-MIT metadata plus the real chb01_03 crop under the name chb01_03.edf."""
    mirror = tmp_path / "mirror"
    shutil.copytree(require_shared("mirror/chbmit"), mirror / "chbmit")
    for path in (mirror / "chbmit").rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    crop = require_shared("excerpts/chbmit/chb01_03_seizure_crop.edf")
    shutil.copy(crop, mirror / "chbmit" / "chb01" / "chb01_03.edf")
    sums = [f"{sha256(p)}  {p.relative_to(mirror / 'chbmit').as_posix()}"
            for p in sorted((mirror / "chbmit").rglob("*")) if p.is_file()]  # fmt: skip
    (mirror / "chbmit" / "SHA256SUMS.txt").write_text("\n".join(sums) + "\n")
    return mirror


def test_chbmit_verifies_against_its_published_checksum_list(
    neurodecode_home: Path, tmp_path: Path, serve_directory: Callable[[Path], str]
) -> None:
    mirror = _chbmit_mirror(tmp_path)
    url = serve_directory(mirror)
    (entry,) = fetch_dataset("chbmit", subjects=[1], mirror=url)
    root = neurodecode_home / "chbmit"
    assert (entry.subject, entry.session, entry.run) == ("01", None, "03")
    assert entry.annotation_path == root / "chb01" / "chb01-summary.txt"
    assert entry.companions == (root / "chb01" / "chb01_03.edf.seizures",)
    for path in (entry.path, entry.annotation_path, *entry.companions):
        assert path.read_bytes() == (mirror / "chbmit" / path.relative_to(root)).read_bytes()
    assert not (root / "chb15").exists()  # only the selected case is fetched

    summary = mirror / "chbmit" / "chb15" / "chb15-summary.txt"
    summary.write_text(summary.read_text() + "tampered\n")
    shutil.copy(
        require_shared("excerpts/chbmit/chb01_03_background_crop.edf"),
        mirror / "chbmit" / "chb15" / "chb15_01.edf",
    )
    sums = (mirror / "chbmit" / "SHA256SUMS.txt").read_text()
    sums += f"{sha256(mirror / 'chbmit' / 'chb15' / 'chb15_01.edf')}  chb15/chb15_01.edf\n"
    (mirror / "chbmit" / "SHA256SUMS.txt").write_text(sums)
    (root / "SHA256SUMS.txt").unlink()  # as if the published list were fetched afresh
    with pytest.raises(ChecksumError, match="chb15/chb15-summary.txt"):
        fetch_dataset("chbmit", subjects=[15], mirror=url)
    assert not (root / "chb15" / "chb15-summary.txt").exists()


def test_published_checksum_list_cannot_leave_the_root(
    neurodecode_home: Path, tmp_path: Path, serve_directory: Callable[[Path], str]
) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "chbmit").mkdir(parents=True)
    (mirror / "chbmit" / "SHA256SUMS.txt").write_text(f"{'0' * 64}  ../../evil.edf\n")
    with pytest.raises(ManifestError, match="evil"):
        fetch_dataset("chbmit", mirror=serve_directory(mirror))


def test_bonn_archives_are_fetched_and_extracted(neurodecode_home: Path, mirror_url: str) -> None:
    entries = fetch_dataset("bonn", mirror=mirror_url)
    assert len(entries) == 500
    by_set = {s: [e for e in entries if e.metadata["set"] == s] for s in "ZONFS"}
    assert {s: len(v) for s, v in by_set.items()} == dict.fromkeys("ZONFS", 100)
    assert by_set["N"][0].path.name == "N001.TXT" and by_set["S"][0].subject == "S001"
    assert all(e.path.is_file() for e in entries)
    assert len(by_set["Z"][0].path.read_text().split()) == 4097
    subset = fetch_dataset("bonn", subjects=["S001", "Z100"], mirror=mirror_url)
    assert [e.subject for e in subset] == ["S001", "Z100"]


def test_bonn_needs_a_mirror(neurodecode_home: Path, monkeypatch) -> None:
    monkeypatch.delenv("NEURODECODE_MIRROR", raising=False)
    with pytest.raises(DownloadError, match="NEURODECODE_MIRROR"):
        fetch_dataset("bonn")


class _FlakyRangeHandler(BaseHTTPRequestHandler):
    """Serves one payload: 503 on the first request, then honours Range requests."""

    payload = b""
    requests: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(self.headers.get("Range"))
        if len(self.requests) == 1:
            self.send_error(503)
            return
        start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") else 0
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_retries_and_resumes_with_a_range_request(
    neurodecode_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = require_shared("mirror/eegmmidb/S001/S001R04.edf")
    handler = type("Handler", (_FlakyRangeHandler,), {"payload": source.read_bytes(),
                                                      "requests": []})  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(fetch.time, "sleep", lambda s: None)
    # an earlier download, interrupted when its process was killed
    part = neurodecode_home / ".partial" / "eegmmidb" / "999999" / "S001" / "S001R04.edf.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(handler.payload[:1000])
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        manifest = load_manifest("eegmmidb")
        downloader = fetch._Downloader(manifest, url, retries=1)
        (entry,) = [f for f in manifest.files if f.path == "S001/S001R04.edf"]
        path = downloader.ensure(entry)
    finally:
        server.shutdown()
        server.server_close()
    assert handler.requests == ["bytes=1000-", "bytes=1000-"]
    assert sha256(path) == MNE_CHECKSUMS["S001/S001R04.edf"] and not part.exists()


def test_local_source_needs_its_root_and_reads_the_layout(
    neurodecode_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEURODECODE_TUSZ_ROOT", raising=False)
    with pytest.raises(DownloadError, match="NEURODECODE_TUSZ_ROOT.*agreement"):
        fetch_dataset("tusz")
    with pytest.raises(DownloadError, match="does not exist"):
        fetch_dataset("tusz", root=tmp_path / "nowhere")
    root = tmp_path / "tusz"
    for split, name in [("train", "aaaaaaac_s001_t000"), ("eval", "aaaaaaaq_s002_t001")]:
        folder = root / "edf" / split / name[:8] / f"{name[9:13]}_2002" / "02_tcp_le"
        folder.mkdir(parents=True)
        for suffix in (".edf", ".csv_bi", ".csv"):
            (folder / f"{name}{suffix}").touch()
    monkeypatch.setenv("NEURODECODE_TUSZ_ROOT", str(root))
    (entry,) = fetch_dataset("tusz", filters={"split": ["eval"]})
    assert (entry.subject, entry.session, entry.run) == ("aaaaaaaq", "s002", "001")
    assert entry.metadata == {"split": "eval", "montage": "02_tcp_le"}
    assert entry.annotation_path == entry.path.with_suffix(".csv_bi")
    assert entry.companions == (entry.path.with_suffix(".csv"),)
    assert cache_files(neurodecode_home) == []  # nothing copied


def test_generated_source_calls_the_generator_once_per_parameter_set(
    neurodecode_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import neurodecode.data.fetch as fetch_module

    calls: list[Path] = []

    def fake_generate(root: Path, manifest) -> None:
        calls.append(root)
        eeg = root / "sub-01" / "ses-01" / "eeg"
        eeg.mkdir(parents=True, exist_ok=True)
        for suffix in ("eeg.edf", "events.tsv"):
            (eeg / f"sub-01_ses-01_task-szMonitoring_run-01_{suffix}").touch()

    monkeypatch.setattr(fetch_module, "generate_dataset", fake_generate)
    (entry,) = fetch_dataset("simulated")
    assert (entry.subject, entry.session, entry.run) == ("01", "01", "01")
    assert entry.metadata == {"task": "szMonitoring"}
    assert entry.annotation_path.name == "sub-01_ses-01_task-szMonitoring_run-01_events.tsv"
    assert calls[0].parent == dataset_root("simulated")
    assert main(["fetch", "simulated", "generator_params.seed=1"]) == 0
    assert len(calls) == 2 and calls[1] != calls[0]


def test_moabb_source_maps_files_to_sessions(
    neurodecode_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FakeBNCI:
        subject_list = [1, 2]

        def data_path(self, subject, path, update_path):
            folder = Path(path) / "MNE-bnci-data" / "database" / "data-sets" / "001-2014"
            folder.mkdir(parents=True, exist_ok=True)
            names = [folder / f"A{subject:02d}{s}.mat" for s in "TE"]
            for name in names:
                name.touch()
            return [str(n) for n in names]

    monkeypatch.setattr(fetch, "_moabb_dataset", lambda name: FakeBNCI())
    entries = fetch_dataset("bnci2014_001", subjects=[2])
    assert [(e.subject, e.session) for e in entries] == [("02", "E"), ("02", "T")]
    assert all(isinstance(e, RecordingEntry) and e.path.is_file() for e in entries)


def test_selection_matches_numbers_and_rejects_empty_results(
    neurodecode_home: Path, mirror_url: str
) -> None:
    selection = fetch.Selection.build(subjects=1, runs=["4", 8])
    assert selection.accepts({"subject": "001", "run": "08"})
    assert not selection.accepts({"subject": "001", "run": "05"})
    with pytest.raises(ConfigError, match="no recording"):
        fetch_dataset("eegmmidb", subjects=[200], mirror=mirror_url)


def test_cache_paths_resolving_outside_the_root_are_refused(
    neurodecode_home: Path, tmp_path: Path, mirror_url: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (neurodecode_home / "eegmmidb").mkdir(parents=True)
    (neurodecode_home / "eegmmidb" / "S001").symlink_to(elsewhere)
    with pytest.raises(ManifestError, match="eegmmidb.yaml.*resolves outside"):
        fetch_dataset("eegmmidb", subjects=[1], runs=[4], mirror=mirror_url)
    assert list(elsewhere.iterdir()) == []
