"""What an admin does to accounts in Argilla survives a restart; `rotate` changes Argilla and credentials.json together."""

from __future__ import annotations

import json
import re
import sqlite3

import httpx
import pytest

from curation_assets.local_argilla.bootstrap import AccountsError, Credentials, plan_credentials
from curation_assets.local_argilla.config import LocalArgillaConfig
from curation_assets.local_argilla.process import ArgillaServerProcess, free_port
from curation_assets_tests.argilla_helpers import annotator_account
from curation_assets_tests.conftest import TEST_ANNOTATORS
from curation_assets_tests.local_argilla.test_cli import run_cli

pytestmark = pytest.mark.server


def owner_headers(server) -> dict:
    return {"X-Argilla-Api-Key": server.owner_api_key}


def user_id(server, username: str) -> str:
    users = httpx.get(f"{server.url}/api/v1/users", headers=owner_headers(server)).json()["items"]
    return next(user["id"] for user in users if user["username"] == username)


def usernames(server) -> set[str]:
    return {
        user["username"]
        for user in httpx.get(f"{server.url}/api/v1/users", headers=owner_headers(server)).json()["items"]
    }


def sign_in(server, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/token", data={"username": username, "password": password})


def me_status(server, headers: dict) -> int:
    return httpx.get(f"{server.url}/api/v1/me", headers=headers).status_code


def restart(server, annotator_names=TEST_ANNOTATORS) -> ArgillaServerProcess:
    """Stop and serve the same data dir again, with the same team configured as on the first start."""
    server.stop()
    return ArgillaServerProcess(server.config, annotator_names).start()


def stored(server) -> Credentials:
    return Credentials.from_json(server.config.credentials_path.read_text())


def test_a_deleted_account_stays_deleted_after_a_restart(fresh_argilla_server):
    server = fresh_argilla_server
    chen = annotator_account(server, "chen")
    assert me_status(server, {"X-Argilla-Api-Key": chen.api_key}) == 200
    token = sign_in(server, "chen", chen.password).json()["access_token"]

    assert (
        httpx.delete(f"{server.url}/api/v1/users/{user_id(server, 'chen')}", headers=owner_headers(server)).status_code
        == 200
    )
    assert me_status(server, {"Authorization": f"Bearer {token}"}) == 401, "his session ends with the account"

    restarted = restart(server)  # chen is still in the configured team
    try:
        assert "chen" not in usernames(restarted)
        assert me_status(restarted, {"X-Argilla-Api-Key": chen.api_key}) == 401
        assert sign_in(restarted, "chen", chen.password).status_code == 401
        credentials = stored(restarted)
        assert credentials.deleted == ["chen"] and "chen" not in [
            account.username for account in credentials.annotators
        ]
        assert "Deleted in Argilla, not re-created: chen" in restarted.log_tail()
    finally:
        restarted.stop()

    # Only an explicit restore brings the name back, as a new account with new secrets.
    restored = run_cli(server.data_dir, "bootstrap", "--restore", "chen")
    assert restored.returncode == 0, restored.stderr
    new_chen = next(account for account in stored(server).annotators if account.username == "chen")
    assert new_chen.api_key != chen.api_key and new_chen.password != chen.password
    assert stored(server).deleted == []


def test_a_password_changed_in_argilla_is_kept_and_ends_older_sessions(fresh_argilla_server):
    server = fresh_argilla_server
    ana = annotator_account(server, "ana")
    old_session = {"Authorization": f"Bearer {sign_in(server, 'ana', ana.password).json()['access_token']}"}
    assert me_status(server, old_session) == 200
    new_password = "changed-by-the-owner-1"

    changed = httpx.patch(
        f"{server.url}/api/v1/users/{user_id(server, 'ana')}",
        headers=owner_headers(server),
        json={"password": new_password},
    )
    assert changed.status_code == 200
    assert me_status(server, old_session) == 401, "a token issued before the password change no longer works"
    new_session = {"Authorization": f"Bearer {sign_in(server, 'ana', new_password).json()['access_token']}"}
    assert me_status(server, new_session) == 200

    restarted = restart(server)
    try:
        assert sign_in(restarted, "ana", ana.password).status_code == 401, "the old password does not come back"
        assert sign_in(restarted, "ana", new_password).status_code == 201
        assert me_status(restarted, new_session) == 200, "a session opened after the change survives the restart"
        assert me_status(restarted, {"X-Argilla-Api-Key": ana.api_key}) == 200, "her API key was not touched"
        assert next(account for account in stored(restarted).annotators if account.username == "ana").password is None
        assert "Password changed in Argilla, kept: ana" in restarted.log_tail()
        listing = run_cli(restarted.data_dir, "credentials", port=restarted.config.port)
        assert re.search(r"ana +password: \(changed in Argilla\)", listing.stdout), listing.stdout
    finally:
        restarted.stop()


def test_rotate_changes_argilla_and_the_credentials_file_together(fresh_argilla_server):
    server = fresh_argilla_server
    bruno = annotator_account(server, "bruno")
    old_owner_key = server.owner_api_key
    old_session = {"Authorization": f"Bearer {sign_in(server, 'bruno', bruno.password).json()['access_token']}"}

    # While the server runs, as an admin would.
    rotated = run_cli(server.data_dir, "rotate", "bruno")
    owner_rotated = run_cli(server.data_dir, "rotate", "owner", "--api-key")
    assert rotated.returncode == 0 and owner_rotated.returncode == 0, rotated.stderr + owner_rotated.stderr
    new_bruno = annotator_account(server, "bruno")
    new_owner_key = server.owner_api_key
    assert (
        new_bruno.password != bruno.password and new_bruno.api_key != bruno.api_key and new_owner_key != old_owner_key
    )
    output = rotated.stdout + rotated.stderr + owner_rotated.stdout + owner_rotated.stderr
    for secret in (bruno.password, bruno.api_key, new_bruno.password, new_bruno.api_key, old_owner_key, new_owner_key):
        assert secret not in output, "rotate prints no secret"

    assert me_status(server, {"X-Argilla-Api-Key": bruno.api_key}) == 401
    assert me_status(server, {"X-Argilla-Api-Key": new_bruno.api_key}) == 200
    assert me_status(server, old_session) == 401, "sessions opened with the old password end"
    assert sign_in(server, "bruno", bruno.password).status_code == 401
    assert sign_in(server, "bruno", new_bruno.password).status_code == 201
    assert me_status(server, {"X-Argilla-Api-Key": old_owner_key}) == 401
    assert me_status(server, {"X-Argilla-Api-Key": new_owner_key}) == 200

    restarted = restart(server)
    try:
        assert me_status(restarted, {"X-Argilla-Api-Key": new_bruno.api_key}) == 200
        assert me_status(restarted, {"X-Argilla-Api-Key": bruno.api_key}) == 401
        assert sign_in(restarted, "bruno", new_bruno.password).status_code == 201
        assert me_status(restarted, {"X-Argilla-Api-Key": new_owner_key}) == 200
        status = run_cli(restarted.data_dir, "status", port=restarted.config.port)
        assert status.returncode == 0 and "is up" in status.stdout, status.stdout + status.stderr
    finally:
        restarted.stop()


def test_rotate_refuses_what_it_cannot_do(tmp_path):
    config = LocalArgillaConfig(data_dir=tmp_path / "argilla")
    nothing_yet = run_cli(config.data_dir, "rotate", "ana")
    assert nothing_yet.returncode == 2 and "run `curation-argilla serve`" in nothing_yet.stderr
    config.data_dir.mkdir(parents=True)
    credentials = plan_credentials(None, ["ana"])
    credentials.deleted = ["chen"]
    config.credentials_path.write_text(credentials.to_json())
    deleted = run_cli(config.data_dir, "rotate", "chen")
    assert deleted.returncode == 2 and "--restore chen" in deleted.stderr
    unknown = run_cli(config.data_dir, "rotate", "dora")
    assert unknown.returncode == 2 and "'dora' is not in" in unknown.stderr
    from_env = run_cli(
        config.data_dir, "rotate", "owner", "--api-key", env_extra={"CURATION_ARGILLA_OWNER_API_KEY": "k" * 20}
    )
    assert from_env.returncode == 2 and "CURATION_ARGILLA_OWNER_API_KEY come from the environment" in from_env.stderr


def test_serve_on_an_existing_data_dir_adds_no_demo_accounts(tmp_path, monkeypatch):
    data_dir = tmp_path / "argilla"
    first = run_cli(data_dir, "bootstrap", env_extra={"CURATION_ARGILLA_ANNOTATORS": "dora"})
    assert first.returncode == 0, first.stderr
    monkeypatch.delenv("CURATION_ARGILLA_ANNOTATORS", raising=False)
    server = ArgillaServerProcess(LocalArgillaConfig(data_dir=data_dir, port=free_port())).start()
    try:
        assert usernames(server) == {"owner", "dora"}
        assert [account.username for account in server.credentials.annotators] == ["dora"]
    finally:
        server.stop()


def test_binding_every_interface_names_the_real_address(tmp_path):
    config = LocalArgillaConfig(data_dir=tmp_path / "argilla", host="0.0.0.0", port=free_port())
    server = ArgillaServerProcess(config, annotator_names=["dora"]).start()
    try:
        port = config.port
        assert (
            f"Argilla is starting at http://0.0.0.0:{port}, every interface (on this machine: http://127.0.0.1:{port})"
            in server.log_tail()
        )
        assert "starting at http://127.0.0.1" not in server.log_tail()
    finally:
        server.stop()


def test_the_plan_never_brings_back_a_deleted_account_and_adds_demo_accounts_only_to_a_new_data_dir():
    first = plan_credentials(None, None)
    assert [account.username for account in first.annotators] == ["ana", "bruno", "chen"]
    for account in first.accounts:
        account.created_in_argilla = True
    first.annotators = [account for account in first.annotators if account.username != "chen"]
    first.deleted = ["chen"]

    again = plan_credentials(first, ["ana", "chen", "dora"])
    assert [account.username for account in again.annotators] == ["ana", "bruno", "dora"]
    assert again.deleted == ["chen"]
    assert plan_credentials(first, None).annotators == first.annotators, "no demo account joins an existing data dir"
    restored = plan_credentials(first, None, restore=["chen"])
    assert "chen" in [account.username for account in restored.annotators] and restored.deleted == []
    with pytest.raises(AccountsError, match="only accounts deleted in Argilla"):
        plan_credentials(first, None, restore=["ana"])
    first.deleted.append("owner")
    with pytest.raises(AccountsError, match="--restore owner"):
        plan_credentials(first, None)
    legacy = json.loads(first.to_json())
    for account in [legacy["owner"], *legacy["annotators"]]:
        del account["created_in_argilla"]
    assert all(account.created_in_argilla for account in Credentials.from_json(json.dumps(legacy)).accounts), (
        "a credentials file from before: its accounts were all created in Argilla"
    )


def test_a_new_owner_key_in_the_environment_is_applied_once_as_a_rotation(tmp_path):
    data_dir = tmp_path / "argilla"
    first_key, second_key = "owner-key-from-env-first", "owner-key-from-env-second"
    assert run_cli(data_dir, "bootstrap", env_extra={"CURATION_ARGILLA_OWNER_API_KEY": first_key}).returncode == 0
    same = run_cli(data_dir, "bootstrap", env_extra={"CURATION_ARGILLA_OWNER_API_KEY": first_key})
    assert "Owner secrets set" not in same.stdout
    changed = run_cli(data_dir, "bootstrap", env_extra={"CURATION_ARGILLA_OWNER_API_KEY": second_key})
    assert changed.returncode == 0, changed.stderr
    assert "Owner secrets set from a new value of CURATION_ARGILLA_OWNER_API_KEY" in changed.stdout
    assert second_key not in changed.stdout + changed.stderr
    with sqlite3.connect(data_dir / "argilla.db") as connection:
        (api_key,) = connection.execute("SELECT api_key FROM users WHERE username='owner'").fetchone()
    assert api_key == second_key == json.loads((data_dir / "credentials.json").read_text())["owner"]["api_key"]
