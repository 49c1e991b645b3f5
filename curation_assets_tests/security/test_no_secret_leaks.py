"""A full pipeline run, the way the Quickstart runs it, leaves no key or password in any log, event, metadata or file.

Secrets: the owner's API key and password (given through the environment, as a deployment would),
every annotator's generated password and API key, the server's session-signing secret, and a wrong
key used for a run that fails. Allowed homes: `credentials.json` (0600) and the server's own
database, which stores API keys by Argilla's design (passwords only as bcrypt hashes), both in the
0700 data dir.
"""

import stat
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from curation_assets.local_argilla.process import start_embedded_argilla
from curation_assets.quickstart.simulation import SimulationPlan, simulate_annotator

pytestmark = pytest.mark.server

OWNER_API_KEY = "owner-key-from-env-7f3a9c51d2"
OWNER_PASSWORD = "owner-password-from-env-48b1"
WRONG_API_KEY = "wrong-key-never-to-be-logged-5d2e"
ALLOWED_FILES = {"credentials.json", "auth-secret"}
PROJECT = "dolly_excerpt"  # the project the repository declares
SERVER_DATABASE = ("argilla.db", "argilla.db-wal", "argilla.db-shm")


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """An embedded server with the owner's secrets from the environment, and a persistent Dagster home."""
    monkeypatch.setenv("CURATION_ARGILLA_OWNER_API_KEY", OWNER_API_KEY)
    monkeypatch.setenv("CURATION_ARGILLA_OWNER_PASSWORD", OWNER_PASSWORD)
    server = start_embedded_argilla(tmp_path / "argilla", annotator_names=["ana", "bruno"])
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").touch()
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("CURATION_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ARGILLA_API_URL", server.url)
    monkeypatch.setenv("ARGILLA_API_KEY", OWNER_API_KEY)
    try:
        yield server, tmp_path
    finally:
        server.stop()


def run_the_pipeline(server, instance, monkeypatch):
    """What `curation-quickstart --simulate --once` does, plus one run that fails on a wrong key."""
    from curation_assets.definitions import defs

    assert defs.resolve_job_def(f"{PROJECT}_plan_assignments").execute_in_process(instance=instance).success
    for annotator in instance.get_dynamic_partitions(f"{PROJECT}_annotators"):
        defs.resolve_job_def(f"{PROJECT}_push_shards").execute_in_process(instance=instance, partition_key=annotator)
    for account in server.credentials.annotators:
        simulate_annotator(server.url, account.api_key, account.username, SimulationPlan(share=0.5), "curate_dolly")
    refresh = defs.resolve_job_def(f"{PROJECT}_refresh_curation").execute_in_process(instance=instance)
    assert refresh.success

    monkeypatch.setenv("ARGILLA_API_KEY", WRONG_API_KEY)
    failed = defs.resolve_job_def(f"{PROJECT}_refresh_curation").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert not failed.success, "the wrong key is refused, so its error path is scanned too"


def everything_dagster_recorded(instance) -> str:
    """Runs (config, tags), job and plan snapshots, every event (logs, metadata, check results, errors)."""
    parts = []
    for run in instance.get_runs():
        parts.append(serialize_value(run))
        if run.job_snapshot_id:
            parts.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
        if run.execution_plan_snapshot_id:
            parts.append(serialize_value(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)))
        parts.extend(serialize_value(entry) for entry in instance.all_logs(run.run_id))
    return "\n".join(parts)


def files_under(root: Path):
    return [path for path in root.rglob("*") if path.is_file()]


def test_a_full_run_leaves_no_secret_anywhere(deployment, monkeypatch, capfd, caplog):
    server, root = deployment
    credentials = server.credentials
    assert credentials.owner.api_key == OWNER_API_KEY and credentials.owner.password == OWNER_PASSWORD
    secrets = {
        "owner api key": OWNER_API_KEY,
        "owner password": OWNER_PASSWORD,
        "wrong api key": WRONG_API_KEY,
        "session signing secret": (server.data_dir / "auth-secret").read_text().strip(),
    }
    for account in credentials.annotators:
        secrets[f"{account.username} password"] = account.password
        secrets[f"{account.username} api key"] = account.api_key

    with dg.DagsterInstance.get() as instance:
        run_the_pipeline(server, instance, monkeypatch)
        recorded = everything_dagster_recorded(instance)
    server.stop()  # flush the server's log
    printed = capfd.readouterr()
    logged = "\n".join(record.getMessage() for record in caplog.records)

    assert "rows_valid" in recorded and "rejected the API key" in recorded, "the scan sees metadata and errors"
    captured = [path for path in (root / "dagster_home").rglob("compute_logs/*") if path.suffix in (".out", ".err")]
    assert captured and any(path.stat().st_size for path in captured), (
        "the runs' captured stdout/stderr are scanned too"
    )
    outputs = root / "state" / "output" / PROJECT
    published = {path.relative_to(outputs).parts[0] for path in files_under(outputs)}
    assert {"statistics", "curated_dolly", "feedback", "quality"} <= published, "the published files are scanned too"
    leaks = []
    for name, secret in secrets.items():
        for where, text in (
            ("dagster records", recorded),
            ("stdout", printed.out),
            ("stderr", printed.err),
            ("log records", logged),
        ):
            if secret in text:
                leaks.append(f"{name} in {where}")
        for path in files_under(root):
            if path.name in ALLOWED_FILES or path.name in SERVER_DATABASE:
                continue
            if secret.encode() in path.read_bytes():
                leaks.append(f"{name} in {path.relative_to(root)}")
    assert leaks == []

    # Positive control and the allowed places: the scanner finds the secrets where they belong, and only
    # their owner can read them.
    stored = (server.data_dir / "credentials.json").read_text()
    assert all(
        secret in stored
        for name, secret in secrets.items()
        if "password" in name or name.endswith("api key") and "wrong" not in name
    )
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in server.data_dir.iterdir() if path.is_file()}
    assert {"credentials.json", "auth-secret", "argilla.db", "server.log"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o600), "credentials, database and log: owner-only"
    database = b"".join(path.read_bytes() for path in server.data_dir.iterdir() if path.name in SERVER_DATABASE)
    assert [name for name, secret in secrets.items() if "password" in name and secret.encode() in database] == [], (
        "the server keeps only password hashes"
    )
    assert all(server.data_dir in path.parents for path in files_under(root) if path.name in SERVER_DATABASE)
