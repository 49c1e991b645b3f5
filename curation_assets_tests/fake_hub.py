"""A local HTTP server standing in for the Hugging Face Hub, reached through HF_ENDPOINT: it answers the calls
`huggingface_hub` makes to create a dataset repo and commit files to it, and keeps what it was sent.

Only the Hub's side of the wire is imitated, and only as far as a push needs: repo creation, repo info,
pre-upload (every file "regular": sent inline in the commit, no LFS or Xet storage), commits, listing
and downloading files. Whatever the client sends is recorded, so a test can assert what left the machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


@dataclass
class HubRepo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)

    @property
    def sha(self) -> str:
        return hashlib.sha1("".join(self.commits).encode()).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None


class FakeHub:
    """`with FakeHub() as hub:` serves on a free loopback port at `hub.url`; `hub.repos` holds what was pushed."""

    def __init__(self):
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[Request] = []
        self.large_files: dict[str, bytes] = {}  # LFS objects by sha256, uploaded before the commit that names them
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def _answer(self, status: int, body=None, headers: dict | None = None) -> None:
                data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/json" if not isinstance(body, bytes) else "application/octet-stream"
                )
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _dispatch(self) -> None:
                body = self._body()
                path = unquote(urlparse(self.path).path)
                hub.requests.append(Request(self.command, path, self.headers.get("Authorization")))
                try:
                    hub._route(self, self.command, path, body)
                except Exception as error:  # noqa: BLE001 - the client shows a 500's text; the test then sees why
                    self._answer(500, {"error": f"fake hub: {type(error).__name__}: {error}"})

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _dispatch

        return Handler

    # -- the Hub's routes, as far as a dataset push goes --------------------------------

    def _route(self, handler, method: str, path: str, body: bytes) -> None:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/repos/create":
            request = json.loads(body)
            repo_id = f"{request['organization']}/{request['name']}" if request.get("organization") else request["name"]
            assert request.get("type") == "dataset", request
            private = request.get("visibility") == "private" or bool(request.get("private"))
            self.repos.setdefault(repo_id, HubRepo(repo_id, private))
            return handler._answer(200, {"url": f"{self.url}/datasets/{repo_id}", "name": repo_id, "id": repo_id})
        if method == "POST" and path == "/api/validate-yaml":
            errors = _card_metadata_errors(json.loads(body)["content"])
            return handler._answer(400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": []})
        if parts[:2] == ["api", "datasets"] and len(parts) >= 4:
            repo = self.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return handler._answer(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
            action = parts[4] if len(parts) > 4 else None
            if action is None or action == "revision":
                return handler._answer(200, self._info(repo))
            if action == "preupload" and method == "POST":
                files = json.loads(body)["files"]
                return handler._answer(
                    200,
                    {
                        "files": [
                            {"path": f["path"], "uploadMode": _upload_mode(f["path"]), "shouldIgnore": False}
                            for f in files
                        ]
                    },
                )
            if action == "commit" and method == "POST":
                return handler._answer(200, self._commit(repo, body))
            if action == "tree":
                folder = "/".join(parts[6:])
                listing = self._tree(repo, folder, recursive="recursive=true" in handler.path.lower())
                if folder and not listing:
                    return handler._answer(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                return handler._answer(200, listing)
            if action == "paths-info" and method == "POST":
                asked = handler.headers.get("Content-Type", "")
                paths = json.loads(body)["paths"] if "json" in asked else _form_paths(body)
                return handler._answer(200, [self._entry(repo, name) for name in paths if name in repo.files])
        if method == "POST" and path.endswith(".git/info/lfs/objects/batch"):
            request = json.loads(body)
            assert request["operation"] == "upload" and "basic" in request["transfers"], request
            objects = [
                {"oid": o["oid"], "size": o["size"], "actions": {"upload": {"href": f"{self.url}/fake-lfs/{o['oid']}"}}}
                for o in request["objects"]
            ]
            return handler._answer(200, {"transfer": "basic", "objects": objects})
        if method == "PUT" and parts[0] == "fake-lfs":
            assert hashlib.sha256(body).hexdigest() == parts[1], "the uploaded bytes are those announced"
            self.large_files[parts[1]] = body
            return handler._answer(200)
        if parts[:1] == ["datasets"] and len(parts) >= 6 and parts[3] == "resolve":
            repo = self.repos.get(f"{parts[1]}/{parts[2]}")
            name = "/".join(parts[5:])
            if repo is None or name not in repo.files:
                return handler._answer(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            content = repo.files[name]
            return handler._answer(200, content, {"X-Repo-Commit": repo.sha, "ETag": f'"{_git_sha(content)}"'})
        return handler._answer(404, {"error": f"fake hub: no route for {method} {path}"})

    def _info(self, repo: HubRepo) -> dict:
        return {
            "id": repo.repo_id,
            "_id": repo.repo_id,
            "sha": repo.sha,
            "private": repo.private,
            "siblings": [{"rfilename": name} for name in sorted(repo.files)],
            "tags": [],
            "cardData": {},
        }

    def _tree(self, repo: HubRepo, folder: str, recursive: bool) -> list[dict]:
        prefix = f"{folder}/" if folder else ""
        under = sorted(name for name in repo.files if name.startswith(prefix))
        if recursive:
            folders = sorted(
                {
                    "/".join(name.split("/")[: depth + 1])
                    for name in under
                    for depth in range(prefix.count("/"), name.count("/"))
                }
            )
            return [
                {"type": "directory", "path": name, "oid": _git_sha(name.encode()), "size": 0} for name in folders
            ] + [self._entry(repo, name) for name in under]
        children = {prefix + name[len(prefix) :].split("/")[0] for name in under}
        return [
            self._entry(repo, name)
            if name in repo.files
            else {"type": "directory", "path": name, "oid": _git_sha(name.encode()), "size": 0}
            for name in sorted(children)
        ]

    def _entry(self, repo: HubRepo, name: str) -> dict:
        return {"type": "file", "path": name, "oid": _git_sha(repo.files[name]), "size": len(repo.files[name])}

    def _commit(self, repo: HubRepo, body: bytes) -> dict:
        summary = ""
        for line in body.decode().splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                summary = value.get("summary", "")
            elif item["key"] == "file":
                assert value.get("encoding", "base64") == "base64", value
                repo.files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                assert value.get("algo", "sha256") == "sha256", value
                repo.files[value["path"]] = self.large_files[value["oid"]]
            elif item["key"] == "deletedFile":
                repo.files.pop(value["path"], None)
            else:
                raise ValueError(f"a commit operation this fake does not store: {item['key']}")
        repo.commits.append(summary)
        return {
            "commitUrl": f"{self.url}/datasets/{repo.repo_id}/commit/{repo.sha}",
            "commitOid": repo.sha,
            "pullRequestUrl": None,
        }


def _upload_mode(path: str) -> str:
    """Data files go to large-file storage (LFS), text inline in the commit, as the Hub decides for a dataset repo."""
    return "lfs" if path.endswith((".parquet", ".arrow", ".bin")) else "regular"


def _git_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _form_paths(body: bytes) -> list[str]:
    from urllib.parse import parse_qs

    return parse_qs(body.decode()).get("paths", [])


def _card_metadata_errors(card: str) -> list[str]:
    """What the Hub would refuse in a card's YAML header, as far as this fake checks: it must parse, as a mapping."""
    import yaml

    if not card.startswith("---\n"):
        return []
    header = card.split("\n---\n", 1)[0].removeprefix("---\n")
    try:
        metadata = yaml.safe_load(header)
    except yaml.YAMLError as error:
        return [f"the card's YAML does not parse: {error}"]
    return [] if isinstance(metadata, dict) else ["the card's YAML is not a mapping"]
