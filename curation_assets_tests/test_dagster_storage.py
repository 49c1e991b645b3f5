"""The run and event storages curation-quickstart configures (dagster_storage.py): Dagster's SQLite files, kept open.

What must not change against Dagster's own SQLite storages: what is stored and read back, the files (a
DAGSTER_HOME written by one is read by the other), the live log's wake-up of watchers, wiping.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import dagster as dg
import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

from curation_assets.dagster_storage import (
    INSTANCE_OVERRIDES,
    KeptOpenSqliteEventLogStorage,
    KeptOpenSqliteRunStorage,
)
from curation_assets.quickstart import cli


@dg.asset
def numbers() -> list[int]:
    return [1, 2, 3]


@dg.asset
def total(numbers: list[int]) -> int:
    return sum(numbers)


@dg.asset_check(asset=total)
def total_is_positive(total: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=total > 0)


def instance_in(folder, overrides=None):
    folder.mkdir(parents=True, exist_ok=True)
    return dg.instance_for_test(temp_dir=str(folder), overrides=overrides)


def materialize_twice(instance: dg.DagsterInstance) -> list[str]:
    return [
        dg.materialize([numbers, total, total_is_positive], instance=instance, tags={"round": str(round_)}).run_id
        for round_ in (1, 2)
    ]


def event_summary(instance: dg.DagsterInstance, run_id: str) -> list[tuple]:
    return [(entry.dagster_event_type, entry.step_key, entry.user_message) for entry in instance.all_logs(run_id)]


def run_summary(instance: dg.DagsterInstance, run_ids: list[str]) -> list[tuple]:
    runs = {run.run_id: run for run in instance.get_runs()}
    return [(runs[run_id].status, runs[run_id].tags["round"], runs[run_id].job_name) for run_id in run_ids]


def test_runs_store_and_read_the_same_events_as_with_dagsters_own_storage(tmp_path):
    with instance_in(tmp_path / "kept", INSTANCE_OVERRIDES) as kept:
        assert isinstance(kept.event_log_storage, KeptOpenSqliteEventLogStorage)
        assert isinstance(kept.run_storage, KeptOpenSqliteRunStorage)
        kept_runs = materialize_twice(kept)
        kept_events = [event_summary(kept, run_id) for run_id in kept_runs]
        kept_run_rows = run_summary(kept, kept_runs)
        latest = kept.get_latest_materialization_event(dg.AssetKey("total"))
        check = kept.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("total"), "total_is_positive")]
        )
    with instance_in(tmp_path / "dagster") as default:
        assert type(default.event_log_storage) is SqliteEventLogStorage
        default_runs = materialize_twice(default)
        default_events = [event_summary(default, run_id) for run_id in default_runs]
        default_run_rows = run_summary(default, default_runs)

    # Same events in the same order (messages name run-specific things: compared by type and step).
    assert [[event[:2] for event in run] for run in kept_events] == [
        [event[:2] for event in run] for run in default_events
    ]
    assert len(kept_events[0]) > 10
    assert kept_run_rows == default_run_rows and kept_run_rows[1][:2] == (dg.DagsterRunStatus.SUCCESS, "2")
    assert latest.run_id == kept_runs[1] and latest.asset_materialization.asset_key == dg.AssetKey("total")
    (check_record,) = check.values()
    assert check_record.run_id == kept_runs[1]

    # The files are Dagster's: its own storage reads the history the kept-open one wrote, once that one is closed.
    with instance_in(tmp_path / "kept") as reopened:
        assert type(reopened.event_log_storage) is SqliteEventLogStorage
        assert type(reopened.run_storage) is SqliteRunStorage
        assert [event_summary(reopened, run_id) for run_id in kept_runs] == kept_events
        assert run_summary(reopened, kept_runs) == kept_run_rows
        assert reopened.get_latest_materialization_event(dg.AssetKey("total")).run_id == kept_runs[1]


def test_a_watcher_on_its_own_storage_sees_each_new_event_and_reads_do_not_wake_it(tmp_path):
    """The webserver's live run log: its own storage object (in its own process) watches `<run id>.db` and reads
    when the file changes; here, in one process, a second storage on the same folder plays that part."""
    base_dir = str(tmp_path / "runs")
    writer = KeptOpenSqliteEventLogStorage(base_dir)
    watcher_side = SqliteEventLogStorage(base_dir)  # the webserver's own instance, as in its process
    with instance_in(tmp_path / "dagster", INSTANCE_OVERRIDES) as instance:
        run_id = dg.materialize([numbers], instance=instance).run_id
        stored = instance.all_logs(run_id)
    seen: list[str] = []
    arrived = threading.Event()

    def on_event(entry, cursor):
        seen.append(entry.user_message)
        arrived.set()

    try:
        writer.store_event(stored[0]._replace(run_id="live-run", user_message="first"))
        watcher_side.watch("live-run", None, on_event)
        for message in ("second", "third"):
            arrived.clear()
            writer.store_event(stored[0]._replace(run_id="live-run", user_message=message))
            assert arrived.wait(timeout=10), f"the watcher was not woken by {message!r}; it saw {seen}"
        assert seen[-1] == "third" and "second" in seen

        # Reading the run (as the watcher does) leaves the file alone; otherwise every read would wake it again.
        path = writer.path_for_shard("live-run")
        before = os.stat(path).st_mtime_ns
        time.sleep(0.05)
        assert [entry.user_message for entry in writer.get_logs_for_run("live-run")] == ["first", "second", "third"]
        assert os.stat(path).st_mtime_ns == before
    finally:
        watcher_side.dispose()
        writer.dispose()


def test_wipe_removes_the_run_shards_and_the_storage_keeps_working(tmp_path):
    with instance_in(tmp_path / "dagster", INSTANCE_OVERRIDES) as instance:
        storage = instance.event_log_storage
        (first, _) = materialize_twice(instance)
        assert os.path.exists(storage.path_for_shard(first))
        storage.wipe()
        assert not os.path.exists(storage.path_for_shard(first))
        assert instance.get_latest_materialization_event(dg.AssetKey("total")) is None
        run_id = dg.materialize([numbers, total], instance=instance).run_id
        assert instance.get_latest_materialization_event(dg.AssetKey("total")).run_id == run_id


def test_quickstart_configures_it_and_keeps_a_storage_of_your_own(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_STATE_DIR", str(tmp_path / "state"))
    home = cli.prepare_dagster_home()
    settings = yaml.safe_load((home / "dagster.yaml").read_text())
    assert settings["event_log_storage"] == {
        "module": "curation_assets.dagster_storage",
        "class": "KeptOpenSqliteEventLogStorage",
    }
    assert settings["run_storage"]["class"] == "KeptOpenSqliteRunStorage"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, KeptOpenSqliteEventLogStorage)
        assert instance.event_log_storage._base_dir == str(home / "history" / "runs")
        assert isinstance(instance.run_storage, KeptOpenSqliteRunStorage)
        assert (home / "history" / "runs.db").exists()

    # A dagster.yaml that names its own storage keeps it; Dagster refuses `storage` beside `event_log_storage`.
    own = {"storage": {"sqlite": {"base_dir": str(tmp_path / "elsewhere")}}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(own))
    cli.prepare_dagster_home()
    kept = yaml.safe_load((home / "dagster.yaml").read_text())
    assert kept["storage"] == own["storage"] and not {"run_storage", "event_log_storage"} & set(kept)


def _schema(path) -> tuple[list[tuple], list[tuple], str]:
    """A database file's tables and indexes (their SQL), its migration revision and its journal mode."""
    with sqlite3.connect(path) as connection:
        objects = connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    connection.close()
    return objects, revision, mode


def test_a_new_runs_database_is_the_one_dagster_creates_and_an_existing_one_is_left_alone(tmp_path):
    dagsters = SqliteEventLogStorage(str(tmp_path / "dagster"))
    kept = KeptOpenSqliteEventLogStorage(str(tmp_path / "kept"))
    try:
        for storage in (dagsters, kept):
            with storage.run_connection("first-run"):
                pass
            with storage.run_connection("second-run"):
                pass
        for run_id in ("first-run", "second-run"):
            copied = _schema(kept.path_for_shard(run_id))
            assert copied == _schema(dagsters.path_for_shard(run_id))
            assert copied[2] == "wal" and len(copied[0]) > 5 and copied[1]

        # A file that already exists (another process's run) is opened as it is, never replaced by the image.
        kept.dispose()
        with sqlite3.connect(kept.path_for_shard("third-run")) as connection:
            connection.execute("CREATE TABLE already_here (x)")
        connection.close()
        reopened = KeptOpenSqliteEventLogStorage(str(tmp_path / "kept"))
        with reopened.run_connection("third-run"):
            pass
        names = [name for _, name, _, _ in _schema(reopened.path_for_shard("third-run"))[0]]
        assert "already_here" in names and "event_logs" in names
        reopened.dispose()
        assert not [name for name in os.listdir(tmp_path / "kept") if name.endswith(".partial")]
    finally:
        dagsters.dispose()
        kept.dispose()
