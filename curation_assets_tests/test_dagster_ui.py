"""The Dagster UI, in headless Chromium, shows the asset graph with all six assets."""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from curation_assets.local_argilla.process import free_port
from curation_assets_tests.browser import headless_page
from curation_assets_tests.test_definitions_and_quickstart import ALL_ASSETS

pytestmark = pytest.mark.browser


@pytest.fixture
def dagster_webserver(tmp_path):
    port = free_port()
    (tmp_path / "dagster.yaml").touch()
    environment = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        # The UI only needs the definitions; Argilla is reached when something runs, not here.
        "ARGILLA_API_URL": "http://127.0.0.1:9",
        "ARGILLA_API_KEY": "unused-by-the-ui",
    }
    log = open(tmp_path / "webserver.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "curation_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "webserver.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


GROUPS = ["source", "annotation", "feedback", "publish"]


def test_asset_graph_shows_the_six_assets(dagster_webserver, artifacts_dir):
    with headless_page(width=1900, height=1000) as page:
        page.goto(f"{dagster_webserver}/asset-groups")
        page.get_by_text("Global asset lineage").wait_for(timeout=60_000)
        for group in GROUPS:
            page.get_by_text(group, exact=True).last.wait_for(timeout=30_000)
        time.sleep(2)  # the first-visit community dialog, if any, opens a moment after the page
        skip = page.get_by_role("button", name="Skip")
        if skip.count():
            skip.click()
        # The lineage opens with groups collapsed; clicking a group box in the graph expands it.
        for group in GROUPS:
            page.get_by_text(group, exact=True).last.click()
            time.sleep(0.5)
        page.get_by_text("Hide navigation").click()
        # The graph draws only what is in view: zoom out until the whole lineage fits.
        page.mouse.click(339, 79)  # collapse the group tree beside the graph
        time.sleep(0.5)
        # Expanded groups push the graph out of view, and it draws only what is in view: drag it back.
        page.mouse.move(700, 400)
        page.mouse.down()
        page.mouse.move(1500, 200, steps=10)
        page.mouse.up()
        time.sleep(1)
        page.screenshot(path="/tmp/uiprobe/debug.png")
        for asset in sorted(ALL_ASSETS):
            page.get_by_text(asset, exact=True).last.wait_for(timeout=30_000)
        page.screenshot(path=artifacts_dir / "dagster_asset_graph.png")
        graph_text = page.inner_text("body")
    for asset in ALL_ASSETS:
        assert asset in graph_text
