"""dagster-webserver started for a UI test, on a definitions module in a given folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from curation_assets import state
from curation_assets.dagster_storage import INSTANCE_OVERRIDES
from curation_assets.local_argilla.process import free_port

LOCATION = "curation_assets.definitions"
# Runs launch at once in a process of their own, with no daemon: no sensor starts runs behind the test's back.
# Runs and events are stored as curation-quickstart stores them, so the run page's live log is the one a user watches.
INSTANCE_SETTINGS = yaml.safe_dump(
    {
        "telemetry": {"enabled": False},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
        **INSTANCE_OVERRIDES,
    },
    sort_keys=False,
)


@contextmanager
def dagster_webserver(home: Path, environment: dict[str, str], root: Path | None = None):
    """dagster-webserver on `root`'s definitions (the repository's by default), with DAGSTER_HOME `home`; yields its
    URL. An instance already in `home` (the quickstart's) is used as it is."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(INSTANCE_SETTINGS)
    port = free_port()
    log_path = home / "webserver.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **environment, "DAGSTER_HOME": str(home)},
            cwd=root or state.repository_root(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while not webserver_answers(url):
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.5)
            # The first visit's "Join the Dagster community" dialog, marked seen as its Skip button does.
            graphql(url, "mutation { setNuxSeen }")
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def webserver_answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/server_info", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def graphql(url: str, query: str) -> dict:
    """A POST of JSON from the UI's own origin, as the Dagster UI sends every operation."""
    response = httpx.post(f"{url}/graphql", json={"query": query}, headers={"Origin": url}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]
