"""`dagster dev` behind the web guard: a foreign page cannot launch a run, the UI still can.

Started as the Quickstart would start it (`guarded_dagster_dev_command`), with a one-op job so a
launched run is cheap to see.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from curation_assets.local_argilla.process import free_port
from curation_assets.quickstart.dagster_web_guard import guarded_dagster_dev_command
from curation_assets_tests.browser import headless_page
from curation_assets_tests.dagster_web import graphql, webserver_answers

TINY_DEFINITIONS = """
import dagster as dg

@dg.op
def noop():
    return None

@dg.job
def noop_job():
    noop()

defs = dg.Definitions(jobs=[noop_job])
"""
# dagster dev is a process of its own: not for the fast lane.
pytestmark = pytest.mark.server
LAUNCH_RUN = (
    'mutation { launchRun(executionParams: {selector: {repositoryLocationName: "tiny.py", '
    'repositoryName: "__repository__", jobName: "noop_job"}}) { __typename } }'
)
COUNT_RUNS = "{ runsOrError { ... on Runs { count } } }"
FOREIGN = "http://evil.example"


@pytest.fixture(scope="module")
def dagster(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster")
    (home / "dagster.yaml").touch()
    (home / "tiny.py").write_text(TINY_DEFINITIONS)
    port = free_port()
    log = open(home / "dev.log", "wb")
    process = subprocess.Popen(
        guarded_dagster_dev_command(["-f", "tiny.py", "-p", str(port)]),
        cwd=home, env={**os.environ, "DAGSTER_HOME": str(home)}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not webserver_answers(url):
            assert process.poll() is None and time.monotonic() < deadline, (home / "dev.log").read_text()[-3000:]
            time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def run_count(url: str) -> int:
    return graphql(url, COUNT_RUNS)["runsOrError"]["count"]


def test_a_foreign_page_cannot_launch_a_run_and_the_ui_can(dagster):
    assert run_count(dagster) == 0
    by_get = httpx.get(f"{dagster}/graphql", params={"query": LAUNCH_RUN}, headers={"Origin": FOREIGN})
    assert by_get.status_code == 405 and "must be sent by POST" in by_get.text
    # An <img src=...> sends no Origin at all: a mutation by GET is refused whoever asks.
    assert httpx.get(f"{dagster}/graphql", params={"query": LAUNCH_RUN}).status_code == 405
    simple_form = httpx.post(
        f"{dagster}/graphql", params={"query": LAUNCH_RUN}, headers={"Origin": FOREIGN, "Content-Type": "text/plain"}
    )
    assert simple_form.status_code == 403
    cross_site_json = httpx.post(f"{dagster}/graphql", json={"query": LAUNCH_RUN}, headers={"Origin": FOREIGN})
    assert cross_site_json.status_code == 403
    assert run_count(dagster) == 0, "no run was launched"

    # Reading by GET still works (GraphiQL and links do it), and the UI's own POST launches the run.
    read = httpx.get(f"{dagster}/graphql", params={"query": COUNT_RUNS})
    assert read.status_code == 200 and read.json()["data"]["runsOrError"]["count"] == 0
    assert graphql(dagster, LAUNCH_RUN)["launchRun"]["__typename"] == "LaunchRunSuccess"
    assert run_count(dagster) == 1, "the mutation the guard refused is a real one"


def test_foreign_host_names_and_cross_site_websockets_are_refused(dagster):
    port = dagster.rsplit(":", 1)[1]
    rebound = httpx.get(f"{dagster}/server_info", headers={"Host": f"attacker.example:{port}"})
    assert rebound.status_code == 400 and "unknown Host header" in rebound.text
    assert httpx.get(f"{dagster}/server_info", headers={"Host": f"localhost:{port}"}).status_code == 200

    websocket_url = dagster.replace("http://", "ws://") + "/graphql"
    with pytest.raises(InvalidStatus) as refused:
        connect(websocket_url, origin=FOREIGN, subprotocols=["graphql-ws"], open_timeout=10)
    assert refused.value.response.status_code == 403
    with connect(websocket_url, origin=dagster, subprotocols=["graphql-ws"], open_timeout=10) as own:
        own.send(json.dumps({"type": "connection_init"}))
        assert json.loads(own.recv(timeout=10))["type"] == "connection_ack"


@pytest.mark.browser
def test_the_dagster_ui_still_launches_runs_behind_the_guard(dagster, artifacts_dir):
    runs_before = run_count(dagster)
    # The first visit's "Join the Dagster community" dialog, marked seen as its Skip button does.
    assert graphql(dagster, "mutation { setNuxSeen }")["setNuxSeen"]
    with headless_page() as page:
        page.goto(f"{dagster}/locations/tiny.py/jobs/noop_job/playground")
        page.get_by_role("button", name="Launch Run").click(timeout=60_000)
        page.wait_for_url("**/runs/**", timeout=60_000)
        page.get_by_text("noop_job").first.wait_for(timeout=60_000)
        page.screenshot(path=artifacts_dir / "dagster_behind_guard.png")
    assert run_count(dagster) == runs_before + 1
