"""The production profile, started by its one command on a fresh clone: Argilla on PostgreSQL with several workers,
Dagster's instance on PostgreSQL with a run queue and a limit on the steps that write to Argilla (docs/team.md).

PostgreSQL and redis-server must be installed (scripts/test.sh installs them as root, as in CI): without them this
test fails with the way to install them; it is never skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
from dagster_postgres.run_storage import PostgresRunStorage

from curation_assets.defs.resources import ARGILLA_WRITES_POOL
from curation_assets.quickstart.cli import main, start_over
from curation_assets.state import STATE_DIR_ENV
from curation_assets.team.dagster_instance import ARGILLA_WRITE_SLOTS, MAX_CONCURRENT_RUNS
from curation_assets.team.postgres import libpq_url
from curation_assets.team.services import DAGSTER_DATABASE_URL_ENV, TeamServices, default_postgres_folder
from curation_assets_tests.test_definitions_and_quickstart import clone, succeeded  # noqa: F401  (the fixture)

WORKERS = 2


def rows(url: str, query: str) -> list[tuple]:
    with psycopg2.connect(libpq_url(url)) as connection, connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


@pytest.mark.server
def test_the_team_profile_runs_the_pipeline_on_postgresql_with_workers_a_run_queue_and_a_pool(clone, monkeypatch):  # noqa: F811
    team = clone.root / ".local" / "team"
    services_folder = team / "services"
    try:
        shown = succeeded(
            clone.run(f"curation-quickstart --profile team --argilla-workers {WORKERS} --once --simulate 0.5")
        )
        assert f"(PostgreSQL, {WORKERS} worker processes)" in shown
        assert re.search(r"annotator_shards\[ana\]\s+\d+ pushed", shown)
        published = int(re.search(r"curated_dolly\s+(\d+) records published", shown)[1])
        assert published > 0
        assert f"--data-dir {Path('.local/team/argilla')} credentials" in shown, (
            "the logins' command names its data dir"
        )
        # Its own state, beside the local profile's (which this run did not create).
        assert sorted(path.name for path in (clone.root / ".local").iterdir()) == ["team"]
        assert not list((team / "argilla").glob("*.db")), "no SQLite database: Argilla's tables are in PostgreSQL"

        # The services come back on the same port with the same kept password; what the run wrote is there.
        with TeamServices(services_folder, use_environment=False) as services:
            urls = services.database_urls
            assert rows(urls.argilla, "SELECT count(*) FROM records") == [(37,)]
            submitted = rows(urls.argilla, "SELECT count(*) FROM responses WHERE status = 'submitted'")[0][0]
            curated = (team / "output" / "dolly_excerpt" / "curated_dolly" / "curated_dolly.jsonl").read_text()
            assert submitted > 0 and len(curated.splitlines()) == published

            os.environ[DAGSTER_DATABASE_URL_ENV] = urls.dagster
            try:
                with dg.DagsterInstance.from_config(str(team / "dagster")) as instance:
                    assert isinstance(instance.run_storage, PostgresRunStorage)
                    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
                    concurrency = instance.get_concurrency_config()
                    assert concurrency.run_queue_config.max_concurrent_runs == MAX_CONCURRENT_RUNS
                    runs = instance.get_runs()
                    assert runs and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
                    assert {run.job_name for run in runs} >= {
                        "dolly_excerpt_push_shards",
                        "dolly_excerpt_refresh_curation",
                    }
                    # The pushes claimed the pool's slot: its limit is the profile's, set by the instance itself.
                    pool = instance.event_log_storage.get_concurrency_info(ARGILLA_WRITES_POOL)
                    assert (pool.slot_count, pool.claimed_slots) == (ARGILLA_WRITE_SLOTS, [])
            finally:
                os.environ.pop(DAGSTER_DATABASE_URL_ENV, None)
    finally:
        # What --fresh does (before it runs the pipeline again): it also removes the private cluster, which as root
        # lives outside the state folder.
        monkeypatch.setenv(STATE_DIR_ENV, str(team))
        assert start_over(assume_yes=True, team=True)
    assert not team.exists() and not (default_postgres_folder(services_folder) / "data").exists()


def test_several_argilla_workers_need_the_team_profile(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--argilla-workers", "3", "--once"])
    assert exited.value.code == 2 and "goes with --profile team" in capsys.readouterr().err
