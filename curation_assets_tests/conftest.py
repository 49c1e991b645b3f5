"""Shared fixtures: the real embedded Argilla server, started as a process for the test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pytest

from curation_assets.dagster_storage import INSTANCE_OVERRIDES
from curation_assets.local_argilla.process import ArgillaServerProcess, start_embedded_argilla
from curation_assets.local_argilla.runtime import DISABLE_SPEEDUPS_ENV
from curation_assets.team.services import TeamServices

ARTIFACTS_DIR = Path(os.environ.get("CURATION_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
TEST_ANNOTATORS = ["ana", "bruno", "chen"]


SERVER_FIXTURES = {"argilla_server", "fresh_argilla_server", "argilla_server_on_postgres", "team_services"}
# Worker processes of the team profile's server in the tests: more than one, so that nothing per process goes unseen.
TEAM_TEST_WORKERS = 2


def pytest_collection_modifyitems(items):
    """A test that asks for a server is a server test, marked or not: the fast lane (-m "not server") must not start one."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture
def instance(tmp_path):
    """A Dagster instance of the test's own, under its tmp_path."""
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster"), overrides=INSTANCE_OVERRIDES) as instance:
        yield instance


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory) -> ArgillaServerProcess:
    """One real server (SQLite, in-process jobs) on a free port for the whole session."""
    server = start_embedded_argilla(tmp_path_factory.mktemp("argilla"), annotator_names=TEST_ANNOTATORS)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def argilla_server_without_speedups(tmp_path_factory) -> ArgillaServerProcess:
    """A second server for the session that runs argilla-server's own code everywhere (every runtime.SPEEDUPS off)."""
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(DISABLE_SPEEDUPS_ENV, "all")
        server = start_embedded_argilla(
            tmp_path_factory.mktemp("argilla-without-speedups"), annotator_names=TEST_ANNOTATORS
        )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def team_services(tmp_path_factory) -> TeamServices:
    """The team profile's PostgreSQL and Redis, private to the session, whatever the environment names.

    PostgreSQL must be installed (scripts/test.sh installs it when run as root, as in CI): without
    it the tests that need it fail, saying how to install it; they are never skipped.
    """
    # As root, the cluster runs as the postgres user, who cannot enter pytest's root-only folders.
    postgres_folder = Path(tempfile.mkdtemp(prefix="curation-test-postgres-"))
    services = TeamServices(tmp_path_factory.mktemp("team"), postgres_folder=postgres_folder, use_environment=False)
    try:
        yield services.start()
    finally:
        services.stop()
        shutil.rmtree(postgres_folder, ignore_errors=True)


@pytest.fixture(scope="session")
def argilla_server_on_postgres(tmp_path_factory, team_services) -> ArgillaServerProcess:
    """The team profile's server for the session: PostgreSQL, a real Redis, two worker processes."""
    server = start_embedded_argilla(
        tmp_path_factory.mktemp("argilla-on-postgres"),
        annotator_names=TEST_ANNOTATORS,
        database_url=team_services.database_urls.argilla,
        redis_url=team_services.redis_url,
        workers=TEAM_TEST_WORKERS,
    )
    yield server
    server.stop()


SERVER_KINDS = {
    "speedups on": "argilla_server",
    "speedups off": "argilla_server_without_speedups",
    "postgres, 2 workers": "argilla_server_on_postgres",
}


@pytest.fixture(scope="module", params=list(SERVER_KINDS))
def argilla_server_each_way(request) -> ArgillaServerProcess:
    """The session's server, the one without speedups, and the team profile's: a module using it runs against each."""
    return request.getfixturevalue(SERVER_KINDS[request.param])


@pytest.fixture
def fresh_argilla_server(tmp_path) -> ArgillaServerProcess:
    """A server of the test's own, for tests that stop, kill or restart it."""
    server = start_embedded_argilla(tmp_path / "argilla", annotator_names=TEST_ANNOTATORS)
    yield server
    server.stop()
