"""The Dagster UI, in headless Chromium, shows the asset graph with every asset."""

import os
import re
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


def label(asset: str) -> re.Pattern:
    """A graph node's label: long names are shortened in the middle (annot…_assignments)."""
    head, tail = asset[:5], asset.split("_")[-1]
    return re.compile(rf"^({re.escape(asset)}|{re.escape(head)}.*….*_{re.escape(tail)})$")


def test_asset_graph_shows_every_asset(dagster_webserver, artifacts_dir):
    with headless_page(width=1900, height=1000) as page:
        page.goto(f"{dagster_webserver}/asset-groups")
        page.get_by_text("Global asset lineage").wait_for(timeout=60_000)
        for group in GROUPS:
            page.get_by_text(group, exact=True).last.wait_for(timeout=30_000)
        time.sleep(2)  # the first-visit community dialog, if any, opens a moment after the page
        skip = page.get_by_role("button", name="Skip")
        if skip.count():
            skip.click()
        # The lineage opens with groups collapsed: the graph's own "Expand all groups" (Alt+E) opens
        # them all and fits the graph in view.
        page.get_by_text("source", exact=True).last.wait_for(timeout=30_000)
        page.mouse.click(1100, 250)
        page.keyboard.press("Alt+e")
        time.sleep(2)
        page.screenshot(path=artifacts_dir / "dagster_asset_graph.png")
        for asset in sorted(ALL_ASSETS):
            page.get_by_text(label(asset)).last.wait_for(timeout=30_000)
