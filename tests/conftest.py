"""Shared fixtures: the real recordings in ../shared/data and loopback HTTP servers."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("NEURODECODE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def require_shared(relative: str = "") -> Path:
    """Return ``../shared/data/<relative>``; skip if absent, but fail under ``CI=true``."""
    path = SHARED_DATA / relative
    if not path.exists():
        message = f"real test data not found at {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: data-dependent tests must not be skipped)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The root of the real recordings (``../shared/data``)."""
    return require_shared()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="session")
def serve_directory() -> Iterator[Callable[[Path], str]]:
    """Factory: serve a directory over HTTP on 127.0.0.1 and return its base URL."""
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def mirror_url(shared_data: Path, serve_directory: Callable[[Path], str]) -> str:
    """Base URL of ``../shared/data/mirror`` served on 127.0.0.1 (a site's dataset mirror)."""
    return serve_directory(require_shared("mirror"))


@pytest.fixture()
def neurodecode_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``NEURODECODE_HOME`` for the test, so caches never touch the user's."""
    home = tmp_path / "neurodecode_home"
    monkeypatch.setenv("NEURODECODE_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: on shared, loaded cores more threads only spin over small tensors."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
