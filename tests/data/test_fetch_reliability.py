"""Concurrent fetches, per-recording download failures, resumed transfers, and pool workers
that end with their parent (issue 16, findings 1, 5 and 7)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

import neurodecode.data.fetch as fetch
from neurodecode.cli.data import PARTIAL
from neurodecode.data.__main__ import main
from neurodecode.data.manifest import load_manifest
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.network


def _command(*words: str, home: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -m neurodecode.data <words>`` on ``home`` (this checkout imported)."""
    inherited = {k: v for k, v in os.environ.items() if k != "NEURODECODE_MIRROR"}
    env = {**inherited, "NEURODECODE_HOME": str(home), "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "neurodecode.data", *words],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_fetches_on_a_fresh_home_both_get_the_whole_dataset(
    tmp_path: Path, mirror_url: str
) -> None:
    home = tmp_path / "home"
    processes = [_command("fetch", "bonn", f"mirror={mirror_url}", home=home) for _ in range(3)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "500 recording(s) ready" in out
    for letter in "ZONFS":
        segments = [p for p in (home / "bonn" / letter).iterdir() if p.suffix in (".txt", ".TXT")]
        assert len(segments) == 100, letter
    assert not list((home / "bonn").glob(".*extracting*"))


def test_a_404_is_one_failed_recording_and_prepare_exits_3(
    neurodecode_home: Path, mirror_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("NEURODECODE_MIRROR", mirror_url)  # run 2 is missing from the mirror
    words = ["subjects=[1]", "runs=[2,4]"]
    assert main(["fetch", "eegmmidb", *words]) == PARTIAL
    captured = capsys.readouterr()
    assert "S001/S001R02.edf" in captured.err and "404" in captured.err
    assert "1 recording(s) ready" in captured.out and "1 failed" in captured.out
    assert main(["prepare", "eegmmidb", *words, "num_workers=0"]) == PARTIAL
    report = json.loads(next((neurodecode_home / "window-cache").rglob("qc.json")).read_text())
    assert report["summary"]["succeeded"] == 1 and report["summary"]["failed"] == 1
    (failed,) = [r for r in report["recordings"] if r["status"] == "failed"]
    assert failed["run"] == "02" and failed["error"]["type"] == "DownloadError"
    assert "404" in failed["error"]["message"]
    assert main(["prepare", "eegmmidb", "subjects=[1]", "runs=[4]", "num_workers=0"]) == 0


def test_exit_statuses_are_in_the_help(capsys) -> None:
    assert main(["--help"]) == 0
    assert "3 when some failed" in " ".join(capsys.readouterr().out.split())


def test_concurrent_prepares_take_turns_and_share_one_cache(
    tmp_path: Path, mirror_url: str
) -> None:
    home = tmp_path / "home"
    words = ["prepare", "bonn", "subjects=[F001,S001]", "num_workers=0"]
    env = {"NEURODECODE_MIRROR": mirror_url}
    processes = [_command(*words, home=home, env=env) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    assert outputs[0][0].splitlines()[-1] == outputs[1][0].splitlines()[-1]  # the same qc.json
    assert len(list((home / "bonn" / "F").glob("*.txt"))) == 100
    (cache,) = (home / "window-cache" / "bonn").glob("*/meta.json")
    assert json.loads(cache.read_text())["n_windows"] > 0


class _StallingRangeHandler(BaseHTTPRequestHandler):
    """Serves one payload; a request without Range gets its first bytes, then a stall."""

    payload = b""
    sent_before_stall = 300_000
    release = threading.Event()
    ranges: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802
        asked = self.headers.get("Range")
        self.ranges.append(asked)
        start = int(asked[len("bytes=") : -1]) if asked else 0
        body = self.payload[start:]
        self.send_response(206 if asked else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if asked:
            self.wfile.write(body)
            return
        self.wfile.write(body[: self.sent_before_stall])
        self.wfile.flush()
        self.release.wait(60)  # until the test ends: the client is killed meanwhile

    def log_message(self, *args) -> None:
        pass


def test_a_killed_transfer_is_resumed_with_a_range_request(
    neurodecode_home: Path, shared_data: Path
) -> None:
    source = shared_data / "mirror" / "eegmmidb" / "S001" / "S001R04.edf"
    handler = type("Handler", (_StallingRangeHandler,),
                   {"payload": source.read_bytes(), "ranges": [], "release": threading.Event()})  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        process = _command("fetch", "eegmmidb", "subjects=[1]", "runs=[4]", f"mirror={url}",
                           home=neurodecode_home)  # fmt: skip
        part = neurodecode_home / ".partial" / "eegmmidb" / str(process.pid) / "S001"
        part = part / "S001R04.edf.part"
        deadline = time.monotonic() + 60
        while not (part.is_file() and part.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        process.kill()
        process.communicate()
        kept = part.stat().st_size
        assert 0 < kept <= handler.sent_before_stall < 1 << 20  # a part under 1 MiB is kept
        manifest = load_manifest("eegmmidb")
        (entry,) = [f for f in manifest.files if f.path == "S001/S001R04.edf"]
        path = fetch._Downloader(manifest, url, retries=0).ensure(entry)
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
    assert handler.ranges == [None, f"bytes={kept}-"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    assert not part.exists()


def test_a_killed_prepare_leaves_no_worker_alive(tmp_path: Path, mirror_url: str) -> None:
    words = ["prepare", "bonn", "num_workers=2", f"cache_dir={tmp_path / 'cache'}"]
    process = _command(*words, home=tmp_path / "home", env={"NEURODECODE_MIRROR": mirror_url})
    parent = psutil.Process(process.pid)
    deadline = time.monotonic() + 120
    while len(parent.children(recursive=True)) < 2 and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        time.sleep(0.1)
    workers = parent.children(recursive=True)
    assert len(workers) >= 2, "the build never started its workers"
    time.sleep(1.0)  # the workers are busy with recordings
    process.kill()
    process.wait()  # not communicate(): surviving workers would hold its pipes open
    _, alive = psutil.wait_procs(workers, timeout=5)
    for worker in alive:
        worker.kill()
    process.stdout.close()
    process.stderr.close()
    assert alive == []


def test_a_marked_but_partial_extraction_is_extracted_again(
    neurodecode_home: Path, mirror_url: str
) -> None:
    fetch.fetch_dataset("bonn", mirror=mirror_url)
    folder = neurodecode_home / "bonn" / "F"
    for segment in sorted(folder.glob("*.txt"))[52:]:  # what a concurrent run used to leave
        segment.unlink()
    assert (folder / ".neurodecode-extracted").is_file()
    entries = fetch.fetch_dataset("bonn", mirror=mirror_url)
    assert len(entries) == 500 and len(list(folder.glob("*.txt"))) == 100
