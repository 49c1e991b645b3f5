"""Shared fixtures: the real embedded Argilla server, started as a process for the test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation_assets.local_argilla.process import ArgillaServerProcess, start_embedded_argilla
from curation_assets.local_argilla.runtime import DISABLE_SPEEDUPS_ENV

ARTIFACTS_DIR = Path(os.environ.get("CURATION_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts"))
TEST_ANNOTATORS = ["ana", "bruno", "chen"]


SERVER_FIXTURES = {"argilla_server", "fresh_argilla_server"}


def pytest_collection_modifyitems(items):
    """A test that asks for a server is a server test, marked or not: the fast lane (-m "not server") must not start one."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS_DIR


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


@pytest.fixture(scope="module", params=["speedups on", "speedups off"])
def argilla_server_each_way(request) -> ArgillaServerProcess:
    """The session's server, then the one without speedups: a module using it runs once against each."""
    return request.getfixturevalue(
        "argilla_server" if request.param == "speedups on" else "argilla_server_without_speedups"
    )


@pytest.fixture
def fresh_argilla_server(tmp_path) -> ArgillaServerProcess:
    """A server of the test's own, for tests that stop, kill or restart it."""
    server = start_embedded_argilla(tmp_path / "argilla", annotator_names=TEST_ANNOTATORS)
    yield server
    server.stop()
