"""A small Hugging Face Hub protocol server for tests, on 127.0.0.1, kept in memory.

It speaks the parts of the Hub's HTTP API that ``huggingface_hub``'s real client uses to
create a repository, commit files (``preupload`` then an NDJSON ``commit``), resolve
revisions, list trees and download files, with the Hub's error codes (``X-Error-Code:
RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``). Every file is committed inline
("regular" upload mode, which the Hub may choose for any file), so no LFS or Xet storage is
needed. Commits form a history: each one is a full snapshot with its parent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def git_blob_id(content: bytes) -> str:
    """The git object id of a file (what the Hub calls a blob id or a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    message: str
    files: dict[str, bytes]
    date: str


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit oid

    def resolve(self, revision: str) -> Commit | None:
        oid = self.refs.get(revision, revision)
        return self.commits.get(oid)


class HubState:
    """Repositories and a log of requests (method, path) for assertions."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def create(self, repo_id: str, private: bool = False) -> Repo:
        repo = Repo(repo_id, private)
        empty = self._new_commit(repo, "initial commit", {})
        repo.refs["main"] = empty.oid
        self.repos[repo_id] = repo
        return repo

    def commit(self, repo: Repo, branch: str, message: str, changes: dict[str, bytes | None]):
        parent = repo.resolve(branch)
        files = dict(parent.files) if parent else {}
        for path, content in changes.items():
            if content is None:
                files.pop(path, None)
            else:
                files[path] = content
        commit = self._new_commit(repo, message, files, parent.oid if parent else "")
        repo.refs[branch] = commit.oid
        return commit

    def _new_commit(self, repo: Repo, message: str, files: dict[str, bytes], parent: str = ""):
        digest = hashlib.sha1(f"{parent}\n{message}\n{len(repo.commits)}".encode())
        for path in sorted(files):
            digest.update(f"{path}:{git_blob_id(files[path])}".encode())
        date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        commit = Commit(digest.hexdigest(), message, files, date)
        repo.commits[commit.oid] = commit
        return commit


class HubError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, body: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


_REPO = r"(?P<repo>[^/]+/[^/]+)"
_ROUTES = [
    ("POST", r"/api/repos/create", "create_repo"),
    ("POST", r"/api/validate-yaml", "validate_yaml"),
    ("POST", rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", "preupload"),
    ("POST", rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", "commit"),
    ("GET", rf"/api/models/{_REPO}/revision/(?P<rev>[^/]+)", "info"),
    ("GET", rf"/api/models/{_REPO}", "info"),
    ("GET", rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?P<path>/.*)?", "tree"),
    ("GET", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
    ("HEAD", rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "resolve"),
]


class HubHandler(BaseHTTPRequestHandler):
    state: HubState  # set on the subclass made by start_hub_server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # -- plumbing ------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path).rstrip("/") if url.path != "/" else url.path
        self.query = parse_qs(url.query)
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.state.lock:
            self.state.requests.append((method, path))
        for route_method, pattern, name in _ROUTES:
            match = re.fullmatch(pattern, path)
            if route_method == method and match:
                try:
                    with self.state.lock:
                        getattr(self, name)(**match.groupdict())
                except HubError as err:
                    self._send_json(
                        err.body or {"error": err.message},
                        err.status,
                        {"X-Error-Code": err.code} if err.code else None,
                    )
                return
        self._send_json({"error": f"no route {method} {path}"}, 404)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload: object, status: int = 200, headers: dict | None = None) -> None:
        self._send(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _repo(self, repo_id: str) -> Repo:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(unquote(revision))
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # -- routes --------------------------------------------------------------------------

    def create_repo(self) -> None:
        payload = json.loads(self.body)
        repo_id = f"{payload['organization']}/{payload['name']}"
        url = f"{self.base}/{repo_id}"
        if repo_id in self.state.repos:
            raise HubError(
                409,
                "You already created this model repo",
                body={"error": "You already created this model repo", "url": url},
            )
        self.state.create(repo_id, private=payload.get("visibility") == "private")
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self) -> None:
        self._send_json({"errors": [], "warnings": []})

    def preupload(self, repo: str, rev: str) -> None:
        current = self._commit(self._repo(repo), rev).files
        files = []
        for item in json.loads(self.body)["files"]:
            existing = current.get(item["path"])
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": None if existing is None else git_blob_id(existing),
                }
            )
        self._send_json({"files": files, "commitOid": self._commit(self._repo(repo), rev).oid})

    def commit(self, repo: str, rev: str) -> None:
        hub_repo = self._repo(repo)
        self._commit(hub_repo, rev)
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        changes: dict[str, bytes | None] = {}
        for line in lines:
            value = line["value"]
            if line["key"] == "file":
                changes[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "deletedFile":
                changes[value["path"]] = None
            elif line["key"] != "header":
                raise HubError(400, f"unsupported commit operation {line['key']}")
        commit = self.state.commit(hub_repo, unquote(rev), header["summary"], changes)
        self._send_json(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self.base}/{repo}/commit/{commit.oid}",
                "pullRequestUrl": None,
            }
        )

    def info(self, repo: str, rev: str = "main") -> None:
        hub_repo = self._repo(repo)
        commit = self._commit(hub_repo, rev)
        self._send_json(
            {
                "id": repo,
                "modelId": repo,
                "sha": commit.oid,
                "private": hub_repo.private,
                "lastModified": commit.date,
                "tags": [],
                "library_name": "neurodecode",
                "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            }
        )

    def tree(self, repo: str, rev: str, path: str | None = None) -> None:
        commit = self._commit(self._repo(repo), rev)
        prefix = (path or "").strip("/")
        entries = [
            {"type": "file", "oid": git_blob_id(content), "size": len(content), "path": name}
            for name, content in sorted(commit.files.items())
            if not prefix or name.startswith(prefix + "/")
        ]
        self._send_json(entries)

    def resolve(self, repo: str, rev: str, path: str) -> None:
        commit = self._commit(self._repo(repo), rev)
        if path not in commit.files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        content = commit.files[path]
        self._send(
            200,
            content,
            {
                "Content-Type": "application/octet-stream",
                "X-Repo-Commit": commit.oid,
                "ETag": f'"{git_blob_id(content)}"',
            },
        )


def start_hub_server() -> tuple[ThreadingHTTPServer, HubState]:
    """Start a server on a free port of 127.0.0.1 in a daemon thread."""
    state = HubState()
    handler = type("BoundHubHandler", (HubHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state
