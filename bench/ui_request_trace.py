"""Which requests Argilla 2.8's web UI makes, per annotation session and per record: a headless browser's trace.

    python bench/ui_request_trace.py [--records 6]

Starts a fresh embedded Argilla with one annotator, lets the pipeline push the shipped Dolly excerpt to
them (the real assets in-process, so the dataset has the pipeline's fields, questions, suggestions and
metadata), then drives the real bundled web UI in headless Chromium: sign in, open the home page, click
the dataset, and submit (or discard) records one after the other. Every request the page sends to
`/api/` is recorded with its phase (sign-in, open, record N), method, path (ids replaced by `{id}`),
query and body. `bench/load.py` makes the same requests per session and per record; this trace is the
evidence for that mix. Writes `bench/results/ui-request-trace-<timestamp>.json` and prints the mix.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import dagster as dg

from curation_assets.dagster_storage import INSTANCE_OVERRIDES

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))  # the shared harness and browser helper in curation_assets_tests

from curation_assets.local_argilla.process import start_embedded_argilla  # noqa: E402
from curation_assets_tests.browser import headless_page  # noqa: E402
from curation_assets_tests.harness import ProjectOnServer  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ANNOTATOR = "ana"
# Long enough for the UI to finish what a click starts (it prefetches the next page in the background).
SETTLE_MS = 2500
# A pause after typing (does the UI save a draft?), and a long look at one record (does it poll?).
EDIT_PAUSE_MS = 5000
IDLE_MS = 45_000


def normalised(url: str) -> tuple[str, list]:
    parts = urlsplit(url)
    return UUID_PATTERN.sub("{id}", parts.path), [
        [key, UUID_PATTERN.sub("{id}", value)] for key, value in parse_qsl(parts.query)
    ]


def trace(records: int) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        work_dir = Path(directory)
        server = start_embedded_argilla(work_dir / "argilla", annotator_names=[ANNOTATOR])
        try:
            (work_dir / "dagster").mkdir()
            with dg.instance_for_test(temp_dir=str(work_dir / "dagster"), overrides=INSTANCE_OVERRIDES) as instance:
                project = ProjectOnServer(server, instance, work_dir / "pipeline", name="trace")
                project.plan()
                project.push_all_shards()
                (dataset,) = project.datasets().values()
            password = next(a.password for a in server.credentials.annotators if a.username == ANNOTATOR)
            return drive_the_ui(server.url, password, project.dataset_name, records)
        finally:
            server.stop()


def drive_the_ui(url: str, password: str, dataset_name: str, records: int) -> dict:
    events: list[dict] = []
    phase = {"name": "sign-in"}

    def on_request(request):
        if "/api/" not in request.url:
            return
        path, query = normalised(request.url)
        body = request.post_data
        events.append(
            {
                "phase": phase["name"],
                "method": request.method,
                "path": path,
                "query": query,
                "body": json.loads(body) if body and path != "/api/v1/token" else None,
            }
        )

    with headless_page() as page:
        page.on("request", on_request)
        page.goto(f"{url}/sign-in")
        page.locator("input[type=text]").first.fill(ANNOTATOR)
        page.locator("input[type=password]").fill(password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda current: "sign-in" not in current, timeout=30_000)
        page.wait_for_timeout(SETTLE_MS)

        phase["name"] = "open dataset"
        # As an annotator does: the dataset's name on the home page.
        page.get_by_text(dataset_name, exact=True).first.click()
        page.get_by_role("button", name="Submit").wait_for(timeout=30_000)
        page.wait_for_timeout(SETTLE_MS)

        actions = []
        for index in range(records):
            # Mostly submits of the pre-filled suggestions, every third one edited first (the UI saves a draft
            # while one types), one discard: as an annotator works.
            action = "Discard" if index == records // 2 else "Submit"
            edit = action == "Submit" and index % 3 == 1
            phase["name"] = f"record {index + 1}: {'edit, ' if edit else ''}{action.lower()}"
            actions.append(phase["name"].split(": ")[1])
            if edit:
                answer = page.locator("[contenteditable=true]").last
                answer.click()
                page.keyboard.press("End")
                page.keyboard.type(" (edited in the browser)", delay=40)
                page.wait_for_timeout(EDIT_PAUSE_MS)
            page.get_by_role("button", name=action).click()
            page.wait_for_timeout(SETTLE_MS)
            page.get_by_role("button", name="Submit").wait_for(timeout=30_000)
        phase["name"] = "idle on a record"
        page.wait_for_timeout(IDLE_MS)
    return {"dataset_fields": "pipeline (trace project: shipped Dolly excerpt)", "actions": actions, "requests": events}


def summary(result: dict) -> dict:
    """Request kinds per phase: what a session's start costs, and what each record costs."""
    by_phase: dict[str, Counter] = {}
    for event in result["requests"]:
        by_phase.setdefault(event["phase"], Counter())[f"{event['method']} {event['path']}"] += 1
    return {phase: dict(counts) for phase, counts in by_phase.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=6)
    arguments = parser.parse_args()
    result = trace(arguments.records)
    result["summary"] = summary(result)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"ui-request-trace-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    print(f"trace written to {path}")


if __name__ == "__main__":
    main()
