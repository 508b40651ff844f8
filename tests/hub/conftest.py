"""Fixtures for the Hub tests: a tiny registered model, the loopback Hub server, olah."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import torch
from torch import nn

from neurodecode.registry import MODELS
from tests.hub.hub_helpers import TINY, TinyNet, use_endpoint
from tests.hub.hub_server import HubState, start_hub_server


@pytest.fixture()
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> Callable[..., nn.Module]:
    """Factory building :class:`TinyNet`, registered as ``hub_test_tiny`` for this test only."""
    from neurodecode.hub import build_model

    MODELS.names()  # load the package's own registrations first
    monkeypatch.setitem(MODELS._entries, TINY, TinyNet)

    def build(n_chans: int = 4, **kwargs) -> nn.Module:
        torch.manual_seed(0)
        args = dict(n_chans=n_chans, n_outputs=2, n_times=64, sfreq=32.0)
        return build_model(TINY, **{**args, **kwargs})

    return build


@pytest.fixture()
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Hugging Face cache for this test (in-process and for subprocesses)."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(home / "agents.json"))
    return home / "hub"


@pytest.fixture(scope="session")
def _hub_server() -> Iterator[tuple[str, HubState]]:
    server, state = start_hub_server()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


@pytest.fixture()
def hub(
    _hub_server: tuple[str, HubState], hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> HubState:
    """The loopback Hub-protocol server, with huggingface_hub pointed at it."""
    url, state = _hub_server
    use_endpoint(monkeypatch, url)
    monkeypatch.setenv("HF_TOKEN", "test-token")
    return state


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def olah_mirror(
    tmp_path: Path, hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, Path], str]]:
    """Factory: serve a folder as Hub repo ``org/name`` through olah in offline mode.

    The folder is committed into a git repository under olah's ``mirrors-path``
    (``<mirrors>/models/<org>/<name>``), which olah serves with the Hub's API when
    ``[accessibility] offline = true``; huggingface_hub is pointed at olah.
    """
    pytest.importorskip("olah", reason="olah is in the dev extra")
    mirrors, port = tmp_path / "olah_mirrors", _free_port()
    config = tmp_path / "olah.toml"
    config.write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{tmp_path / "olah_repos"}"\n'
        f'mirrors-path = ["{mirrors}"]\n[accessibility]\noffline = true\n'
    )
    log = tmp_path / "olah.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "olah.server", "-c", str(config)],
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def serve(repo_id: str, folder: Path) -> str:
        repo = mirrors / "models" / repo_id
        repo.mkdir(parents=True)
        git = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=t@example.org"]
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        for path in folder.iterdir():
            (repo / path.name).write_bytes(path.read_bytes())
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "export"], check=True)
        _wait_until_up(url, process, log)
        use_endpoint(monkeypatch, url)
        return subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()

    yield serve
    process.terminate()
    process.wait(timeout=10)


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(url + "/api/agent-harnesses", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"olah did not start within {timeout} s")
