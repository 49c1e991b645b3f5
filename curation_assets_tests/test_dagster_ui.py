"""The Dagster UI, in headless Chromium, shows the asset graph with every asset."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from curation_assets.local_argilla.process import free_port
from curation_assets_tests.browser import headless_page
from curation_assets.defs.build import ASSET_NAMES

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


def label(asset: str) -> re.Pattern:
    """A graph node's label: long names are shortened in the middle (annot…_assignments)."""
    head, tail = asset[:5], asset.split("_")[-1]
    return re.compile(rf"^({re.escape(asset)}|{re.escape(head)}.*….*_{re.escape(tail)})$")


def test_asset_graph_shows_every_asset_of_the_declared_project(dagster_webserver, artifacts_dir):
    with headless_page(width=1900, height=1000) as page:
        page.goto(f"{dagster_webserver}/asset-groups")
        page.get_by_text("Global asset lineage").wait_for(timeout=60_000)
        # One project is one group, shown open; the first-visit community dialog may cover it.
        page.get_by_text(label("raw_dolly")).last.wait_for(timeout=60_000)
        skip = page.get_by_role("button", name="Skip")
        try:
            skip.wait_for(timeout=5_000)
            skip.click()
        except PlaywrightTimeout:  # no dialog this time
            pass
        for asset in sorted(ASSET_NAMES):
            page.get_by_text(label(asset)).last.wait_for(timeout=30_000)
        page.screenshot(path=artifacts_dir / "dagster_asset_graph.png")
