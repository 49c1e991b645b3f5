"""The `curation-argilla` command line: bootstrap, credentials and its refusals, as a user runs it."""

from __future__ import annotations

import json
import socket
import sqlite3
import stat
import subprocess

import httpx
import pytest

from curation_assets.local_argilla.interpreter import server_command
from curation_assets.local_argilla.process import free_port

pytestmark = pytest.mark.server


def run_cli(data_dir, *arguments, port=None, env_extra=None, timeout=180):
    import os

    environment = {**os.environ, **(env_extra or {})}
    command = server_command("--data-dir", str(data_dir))
    if port is not None:
        command += ["--port", str(port)]
    return subprocess.run([*command, *arguments], capture_output=True, text=True, env=environment, timeout=timeout)


def test_bootstrap_is_idempotent_and_keeps_secrets_private(tmp_path):
    data_dir = tmp_path / "argilla"
    first = run_cli(data_dir, "bootstrap", env_extra={"CURATION_ARGILLA_ANNOTATORS": "dora,eli"})
    assert first.returncode == 0, first.stderr
    assert "dora" in first.stdout and "password:" in first.stdout

    credentials_path = data_dir / "credentials.json"
    assert stat.S_IMODE(credentials_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "auth-secret").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    credentials = json.loads(credentials_path.read_text())
    assert credentials["owner"]["api_key"] not in ("argilla.apikey", "owner.apikey")
    assert credentials["owner"]["password"] != "1234"
    assert [account["username"] for account in credentials["annotators"]] == ["dora", "eli"]

    second = run_cli(data_dir, "bootstrap", env_extra={"CURATION_ARGILLA_ANNOTATORS": "dora,eli,finn"})
    assert second.returncode == 0, second.stderr
    # Only the newcomer's password is shown; nobody's secret changes on a re-run.
    assert "finn" in second.stdout and "dora" not in second.stdout
    again = json.loads(credentials_path.read_text())
    assert again["owner"] == credentials["owner"]
    assert again["annotators"][:2] == credentials["annotators"]
    with sqlite3.connect(data_dir / "argilla.db") as connection:
        users = dict(connection.execute("SELECT username, role FROM users").fetchall())
    assert users == {"owner": "owner", "dora": "annotator", "eli": "annotator", "finn": "annotator"}


def test_owner_secrets_can_come_from_the_environment(tmp_path):
    secrets = {
        "CURATION_ARGILLA_OWNER_API_KEY": "env-provided-owner-key",
        "CURATION_ARGILLA_OWNER_PASSWORD": "env-password-1",
    }
    result = run_cli(tmp_path / "argilla", "bootstrap", env_extra=secrets)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "argilla" / "argilla.db") as connection:
        (api_key,) = connection.execute("SELECT api_key FROM users WHERE username='owner'").fetchone()
    assert api_key == "env-provided-owner-key"


def test_serve_refuses_a_port_in_use(tmp_path):
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = run_cli(tmp_path / "argilla", "serve", port=port, timeout=60)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_data_dir_it_cannot_write(tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = run_cli(not_a_directory / "argilla", "serve", port=free_port(), timeout=60)
    assert result.returncode == 2
    assert "is not writable" in result.stderr and "--data-dir" in result.stderr


def test_serve_refuses_a_database_from_a_newer_server(tmp_path):
    data_dir = tmp_path / "argilla"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "argilla.db") as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('f00dfacefeed')")
    result = run_cli(data_dir, "serve", port=free_port(), timeout=120)
    assert result.returncode == 2
    assert "newer argilla-server" in result.stderr and "f00dfacefeed" in result.stderr


def test_serve_refuses_demo_accounts_on_a_public_address(tmp_path):
    result = run_cli(tmp_path / "argilla", "--host", "0.0.0.0", "serve", port=free_port(), timeout=60)
    assert result.returncode == 2
    assert "refusing to serve demo accounts (ana, bruno, chen) on 0.0.0.0" in result.stderr


def test_status_and_credentials_against_a_running_server(argilla_server):
    status = run_cli(argilla_server.data_dir, "status", port=argilla_server.config.port)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"Argilla 2.8.0 is up at {argilla_server.url}" in status.stdout

    exports = run_cli(argilla_server.data_dir, "credentials", "--env", port=argilla_server.config.port)
    assert f"export ARGILLA_API_URL={argilla_server.url}" in exports.stdout
    key = exports.stdout.split("ARGILLA_API_KEY=")[1].strip()
    me = httpx.get(f"{argilla_server.url}/api/v1/me", headers={"X-Argilla-Api-Key": key}).json()
    assert me["role"] == "owner"


def test_status_says_how_to_start_when_nothing_answers(tmp_path):
    result = run_cli(tmp_path / "argilla", "status", port=free_port())
    assert result.returncode == 1
    assert "curation-argilla serve" in result.stdout


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port`, from the kernel's table (Linux)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, _remote, state = line.split()[1:4]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[index : index + 4][::-1] for index in range(0, len(raw), 4))
                addresses.add(socket.inet_ntop(socket.AF_INET if len(words) == 4 else socket.AF_INET6, words))
    return addresses


def test_the_server_listens_on_loopback_only_by_default(argilla_server):
    from curation_assets.local_argilla.config import DEFAULT_HOST, LocalArgillaConfig

    assert DEFAULT_HOST == "127.0.0.1" and LocalArgillaConfig(data_dir=argilla_server.data_dir).host == DEFAULT_HOST
    assert listening_addresses(argilla_server.config.port) == {"127.0.0.1"}


def test_loopback_is_told_apart_from_addresses_others_can_reach():
    from curation_assets.local_argilla.config import LocalArgillaConfig

    loopback = ["127.0.0.1", "127.0.0.2", "localhost", "::1"]
    reachable = ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "my-laptop.example.org"]
    assert [LocalArgillaConfig(data_dir="x", host=host).is_loopback for host in loopback] == [True] * len(loopback)
    assert [LocalArgillaConfig(data_dir="x", host=host).is_loopback for host in reachable] == [False] * len(reachable)


def test_serve_refuses_demo_accounts_left_by_an_earlier_local_run(tmp_path):
    """Configuring real annotators does not hide the demo accounts the data dir already holds."""
    data_dir = tmp_path / "argilla"
    assert run_cli(data_dir, "bootstrap", env_extra={"CURATION_ARGILLA_ANNOTATORS": "ana,bruno"}).returncode == 0
    result = run_cli(data_dir, "--host", "0.0.0.0", "serve", port=free_port(), timeout=60,
                     env_extra={"CURATION_ARGILLA_ANNOTATORS": "dora"})  # fmt: skip
    assert result.returncode == 2
    assert (
        "refusing to serve demo accounts (ana, bruno) on 0.0.0.0" in result.stderr and "--allow-remote" in result.stderr
    )


def test_remote_serving_is_allowed_only_when_asked_for(tmp_path, monkeypatch):
    from curation_assets.local_argilla.config import LocalArgillaConfig
    from curation_assets.local_argilla.server import ALLOW_REMOTE_ENV, CannotServeError, ServeOptions, check_can_serve

    config = LocalArgillaConfig(data_dir=tmp_path / "argilla", host="0.0.0.0", port=free_port())
    monkeypatch.delenv(ALLOW_REMOTE_ENV, raising=False)
    try:
        check_can_serve(config, ServeOptions(annotator_names=["chen"]))
    except CannotServeError as error:
        assert "refusing to serve demo accounts (chen)" in str(error)
    else:
        raise AssertionError("demo accounts on 0.0.0.0 must be refused")
    check_can_serve(config, ServeOptions(annotator_names=["chen"], allow_remote=True))
    check_can_serve(config, ServeOptions(annotator_names=["dora", "eli"]))  # real accounts only: allowed
    monkeypatch.setenv(ALLOW_REMOTE_ENV, "1")
    check_can_serve(config, ServeOptions(annotator_names=["chen"]))
