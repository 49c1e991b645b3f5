"""Headless Debian Chromium for the UI tests (Playwright drives it; no browser download)."""

import os
import shutil
from contextlib import contextmanager

from playwright.sync_api import sync_playwright

# Without the networking flags Chromium keeps dialling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CURATION_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError(
            "Chromium is required for the browser tests: apt-get install chromium (scripts/test.sh does it)"
        )
    return path


@contextmanager
def headless_page(width: int = 1400, height: int = 900):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
