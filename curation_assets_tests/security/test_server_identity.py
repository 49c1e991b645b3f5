"""No tool sends the owner's key to a server that cannot prove it is the embedded Argilla of the data dir.

The impostor is a real HTTP server on the configured port that answers like Argilla 2.8 and records
everything it receives; the tools are run as a user runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from curation_assets.argilla_adapter.errors import ArgillaUnreachableError
from curation_assets.defs.resources import ArgillaResource
from curation_assets.local_argilla.bootstrap import plan_credentials
from curation_assets.local_argilla.config import LocalArgillaConfig, persistent_auth_secret, write_private_file
from curation_assets.local_argilla.process import ArgillaServerProcess, free_port
from curation_assets.server_identity import (
    IDENTITY_PATH,
    NoServerAnswersError,
    ServerIdentityError,
    verify_before_sending_key,
    verify_embedded_server,
)
from curation_assets_tests.local_argilla.test_cli import run_cli

# Processes of their own (a fake or real server, dagster dev): not for the fast lane.
pytestmark = pytest.mark.server


class Impostor:
    """Answers every request like Argilla 2.8 (version, empty lists); `relay_identity_to` forwards the challenge to a real
    server."""

    def __init__(self, port: int, relay_identity_to: str | None = None, forged_proof: str | None = None):
        self.requests: list[str] = []
        impostor = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("latin-1") if length else ""
                impostor.requests.append(f"{self.command} {self.path}\n{self.headers}\n{body}")
                if self.path.startswith(IDENTITY_PATH) and relay_identity_to:
                    relayed = httpx.get(f"{relay_identity_to}{self.path}")
                    self._send(relayed.status_code, relayed.json())
                elif self.path.startswith(IDENTITY_PATH) and forged_proof:
                    self._send(200, {"proof": forged_proof})
                elif self.path.startswith("/api/v1/status"):
                    self._send(200, {"version": "2.8.0"})
                elif self.path.startswith("/api/v1/me"):
                    self._send(200, {"username": "owner", "role": "owner", "items": []})
                else:
                    self._send(200, {"items": []})

            def _send(self, status: int, payload: dict):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Impostor:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, secret: str) -> bool:
        return any(secret in request for request in self.requests)


@pytest.fixture
def data_dir_with_credentials(tmp_path) -> LocalArgillaConfig:
    """A data dir as `serve` leaves it (credentials and auth secret), its server not running: the port is free for an
    impostor."""
    config = LocalArgillaConfig(data_dir=tmp_path / "argilla", port=free_port())
    write_private_file(config.credentials_path, plan_credentials(None, ["ana"]).to_json())
    persistent_auth_secret(config)
    return config


def owner_key(config: LocalArgillaConfig) -> str:
    return json.loads(config.credentials_path.read_text())["owner"]["api_key"]


@pytest.mark.parametrize("forged_proof", [None, "0" * 64], ids=["no-identity-endpoint", "forged-proof"])
def test_status_refuses_an_impostor_and_sends_it_no_key(data_dir_with_credentials, forged_proof):
    config = data_dir_with_credentials
    with Impostor(config.port, forged_proof=forged_proof) as impostor:
        result = run_cli(config.data_dir, "status", port=config.port)
    assert result.returncode == 2
    assert f"the server answering at {config.url} is not the embedded Argilla of {config.data_dir}" in result.stderr
    assert "No API key was sent to it" in result.stderr and "is up" not in result.stdout
    assert impostor.requests, "the impostor was asked (the check is real)"
    assert not impostor.received(owner_key(config)) and not impostor.received("X-Argilla-Api-Key")


def test_the_quickstart_refuses_an_impostor_and_sends_it_no_key(data_dir_with_credentials, tmp_path):
    config = data_dir_with_credentials
    command = [sys.executable, "-m", "curation_assets.quickstart", "--once", "--argilla-port", str(config.port)]
    environment = {
        **os.environ,
        "CURATION_STATE_DIR": str(tmp_path / "state"),
        "CURATION_ARGILLA_HOME": str(config.data_dir),
    }
    with Impostor(config.port) as impostor:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "using the one already running" not in result.stdout
    assert (
        "is not the embedded Argilla of" in result.stderr and "does not answer the identity challenge" in result.stderr
    )
    assert impostor.requests
    assert not impostor.received(owner_key(config)) and not impostor.received("X-Argilla-Api-Key")


def test_the_server_process_and_the_pipeline_check_refuse_an_impostor(data_dir_with_credentials):
    config = data_dir_with_credentials
    with Impostor(config.port) as impostor:
        with pytest.raises(ServerIdentityError, match="does not answer the identity challenge"):
            ArgillaServerProcess(config).is_answering()
        with pytest.raises(ServerIdentityError, match="Another program holds port"):
            verify_before_sending_key(config.url, owner_key(config), config.data_dir)
        asked = len(impostor.requests)
        verify_before_sending_key(config.url, "a-remote-argilla-key", config.data_dir)
        assert len(impostor.requests) == asked, (
            "a key that is not the embedded owner's is not checked (nothing is sent)"
        )
    assert not impostor.received(owner_key(config))


def test_the_pipeline_resource_refuses_an_impostor_before_any_request(data_dir_with_credentials, monkeypatch):
    config = data_dir_with_credentials
    monkeypatch.setenv("CURATION_ARGILLA_HOME", str(config.data_dir))
    argilla = ArgillaResource(api_url=config.url, api_key=owner_key(config), retry_attempts=1)
    with Impostor(config.port) as impostor:
        with pytest.raises(ArgillaUnreachableError, match="is not the embedded Argilla of"):
            argilla.client.annotator_usernames()
    assert impostor.requests and not impostor.received(owner_key(config)) and not impostor.received("X-Argilla-Api-Key")


def test_nothing_answering_is_told_apart_from_an_impostor(data_dir_with_credentials):
    config = data_dir_with_credentials
    assert ArgillaServerProcess(config).is_answering() is False
    with pytest.raises(NoServerAnswersError, match="curation-argilla --data-dir .* serve"):
        verify_embedded_server(config.url, config.data_dir)


@pytest.mark.server
def test_the_real_server_proves_itself_and_a_relay_to_it_fails(argilla_server, tmp_path):
    verify_embedded_server(argilla_server.url, argilla_server.data_dir)
    assert ArgillaServerProcess(argilla_server.config).is_answering() is True

    other = LocalArgillaConfig(data_dir=tmp_path / "other")
    persistent_auth_secret(other)
    with pytest.raises(ServerIdentityError, match="does not match"):
        verify_embedded_server(argilla_server.url, other.data_dir)

    # A relay on another port passes the challenge to the real server: the proof names the real port.
    relay_port = free_port()
    with Impostor(relay_port, relay_identity_to=argilla_server.url) as relay:
        with pytest.raises(ServerIdentityError, match="does not match"):
            verify_embedded_server(f"http://127.0.0.1:{relay_port}", argilla_server.data_dir)
    assert relay.requests and not relay.received(argilla_server.owner_api_key)

    malformed = httpx.get(f"{argilla_server.url}{IDENTITY_PATH}", params={"nonce": "not hex"})
    assert malformed.status_code == 400, "only well-formed nonces are signed"
