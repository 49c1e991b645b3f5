"""Freshness: seconds from an annotator's submission to the curated jsonl, woken by webhooks vs polling, side by side.

    flock /work/bench.lock .venv/bin/python bench/freshness.py --trials 15

Everything is the product's path, as the Quickstart runs it: the embedded Argilla (in a state folder of its
own), the webhook receiver registered the way `curation-quickstart` registers it, and `dagster dev` (webserver
and daemon, the Quickstart's dagster.yaml) loading two copies of the same project (bench/freshness_defs.py):
`fresh_webhook` reads the receiver's marks, `fresh_polling` has webhooks off and polls Argilla every 30 s.
Before serving, the Quickstart's own first plan, push and refresh run in process; after that the daemon's
sensors, run queue and run launcher start every run.

Each trial submits one edited answer over the UI's REST call in each project (in alternating order) and waits
until the curated jsonl holds it; a random pause between submissions keeps them out of step with the 30 s poll.
Then a burst: several answers in a few seconds in the webhook project, and how many refreshes they caused.
Figures go to bench/results/freshness-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "bench" / "results"
ANNOTATOR = "ana"
WEBHOOK_PROJECT, POLLING_PROJECT = "fresh_webhook", "fresh_polling"
# Until the sensors' first polls have refreshed both projects under the daemon.
READY_TIMEOUT_SECONDS = 600
# A submission later than this is reported as lost (the polling fallback is 30 s plus a refresh).
TRIAL_TIMEOUT_SECONDS = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=15, help="submissions per side (default: %(default)s)")
    parser.add_argument("--burst", type=int, default=8, help="answers in the burst (0: no burst)")
    parser.add_argument("--max-pause", type=float, default=8.0, help="random pause between submissions, up to (s)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder (Argilla, Dagster) afterwards")
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="freshness-", dir=_scratch_dir()))
    os.environ["CURATION_STATE_DIR"] = str(scratch)
    os.environ["FRESHNESS_ANNOTATOR"] = ANNOTATOR
    # Imported once the state folder is chosen: the receiver's marks and its secret go there.
    from curation_assets.local_argilla.process import free_port, start_embedded_argilla
    from curation_assets.quickstart.cli import _plan_and_push, _refresh, prepare_dagster_home, start_webhooks
    from curation_assets.quickstart.console import QUIET_RUN_CONFIG
    from curation_assets.quickstart.dagster_web_guard import guarded_dagster_dev_command

    load_before = os.getloadavg()
    started = time.time()
    server = start_embedded_argilla(scratch / "argilla", annotator_names=[ANNOTATOR])
    webhooks = dagster = None
    try:
        os.environ["ARGILLA_API_URL"] = server.url
        os.environ["ARGILLA_API_KEY"] = server.owner_api_key
        dagster_home = prepare_dagster_home()
        # As the Quickstart does before it serves: plan, push and a first refresh, in this process.
        definitions = _load_definitions()
        for project in (WEBHOOK_PROJECT, POLLING_PROJECT):
            if not (
                _plan_and_push(definitions, project, QUIET_RUN_CONFIG)
                and _refresh(definitions, project, QUIET_RUN_CONFIG)
            ):
                raise SystemExit(f"{project}: the first plan, push or refresh failed")
        webhooks = start_webhooks(server.url, server.owner_api_key, port=free_port())
        if webhooks is None:
            raise SystemExit("the webhook could not be registered")
        command = guarded_dagster_dev_command(
            ["-f", str(REPOSITORY / "bench" / "freshness_defs.py"), "-h", "127.0.0.1", "-p", str(free_port())]
        )
        log = (scratch / "dagster-dev.log").open("w")
        dagster = subprocess.Popen(
            command, cwd=REPOSITORY, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait_for(lambda: _settled(dagster_home), READY_TIMEOUT_SECONDS, "the sensors' first refreshes", step=1.0)
        print(f"ready in {time.time() - started:.0f} s (the sensors' first polls refreshed both projects)", flush=True)

        account = next(account for account in server.credentials.annotators if account.username == ANNOTATOR)
        randomness = random.Random(7)
        latencies: dict[str, list[float]] = {WEBHOOK_PROJECT: [], POLLING_PROJECT: []}
        lost: dict[str, int] = {WEBHOOK_PROJECT: 0, POLLING_PROJECT: 0}
        for trial in range(arguments.trials):
            order = [WEBHOOK_PROJECT, POLLING_PROJECT] if trial % 2 == 0 else [POLLING_PROJECT, WEBHOOK_PROJECT]
            for project in order:
                time.sleep(randomness.uniform(0, arguments.max_pause))
                seconds = _one_submission(server.url, account.api_key, scratch, project, f"trial {trial}")
                if seconds is None:
                    lost[project] += 1
                else:
                    latencies[project].append(seconds)
                print(
                    f"trial {trial:2d} {project:14s} {seconds if seconds is None else round(seconds, 1)} s", flush=True
                )

        burst = _burst(server.url, account.api_key, scratch, dagster_home, arguments.burst) if arguments.burst else None
        load_after = os.getloadavg()
    finally:
        if dagster is not None and dagster.poll() is None:
            os.killpg(dagster.pid, signal.SIGTERM)
            try:
                dagster.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dagster.pid, signal.SIGKILL)
        if webhooks is not None:
            webhooks.close()
        server.stop()
        if not arguments.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    result = {
        "benchmark": "freshness: submission → curated_dolly.jsonl under dagster dev",
        "command": "flock /work/bench.lock .venv/bin/python bench/freshness.py " + " ".join(sys.argv[1:]),
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_1_5_15_before": [round(value, 2) for value in load_before],
        "load_average_1_5_15_after": [round(value, 2) for value in load_after],
        "trials_per_side": arguments.trials,
        "sides": {project: _summary(latencies[project], lost[project]) for project in latencies},
        "burst": burst,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"freshness-{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(_table(result))
    print(f"written: {path.relative_to(REPOSITORY)}")
    return 0


def _scratch_dir() -> Path:
    folder = RESULTS / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _load_definitions():
    """The definitions `dagster dev` loads (bench/freshness_defs.py), for the Quickstart's first runs."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("freshness_defs", REPOSITORY / "bench" / "freshness_defs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.defs


def _settled(dagster_home: Path) -> bool:
    """Each project's sensor has had its first refresh run (after the in-process one), and no run is going on."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
    refreshes = [run.job_name for run in runs if run.job_name.endswith("_refresh_curation")]
    busy = [run for run in runs if not run.is_finished]
    return not busy and all(
        refreshes.count(f"{project}_refresh_curation") >= 2 for project in (WEBHOOK_PROJECT, POLLING_PROJECT)
    )


def _curated(scratch: Path, project: str) -> dict[str, str] | None:
    """The curated jsonl's response per record id, or None before the first refresh wrote it."""
    path = scratch / "output" / project / "curated_dolly" / "curated_dolly.jsonl"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue  # an empty curated dataset is one blank line
        try:
            rows.append(json.loads(line))
        except ValueError:
            return None  # caught mid-write: read again
    return {row["id"]: row["response"] for row in rows}


def _wait_for(condition, timeout: float, what: str, step: float = 0.1) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(step)
    raise TimeoutError(f"{what}: not ready within {timeout:.0f} s")


def _submit(api_url: str, api_key: str, project: str, tag: str) -> tuple[str, str]:
    """One edited answer submitted as the UI submits it; the record's id and the response it now has."""
    from curation_assets.logic.vocabulary import ResponseStatus
    from curation_assets.quickstart.annotator_client import AnnotatorSession
    from curation_assets.quickstart.simulation import unchanged_answers

    with AnnotatorSession(api_url, api_key) as session:
        dataset_id = session.dataset_id(project, ANNOTATOR)
        (record,), _ = session.queue(dataset_id, limit=1)
        answers = unchanged_answers(record)
        response_question = next(name for name, value in answers.items() if value == record.fields["response"])
        answers[response_question] = f"{record.fields['response']} [freshness {tag}]"
        session.respond(record, ResponseStatus.SUBMITTED, answers)
    return record.external_id, answers[response_question]


def _one_submission(api_url: str, api_key: str, scratch: Path, project: str, tag: str) -> float | None:
    """Seconds from the submission's request to the curated jsonl holding it (None: not within the timeout)."""
    submitted_at = time.monotonic()
    record_id, response = _submit(api_url, api_key, project, tag)
    try:
        _wait_for(lambda: (_curated(scratch, project) or {}).get(record_id) == response, TRIAL_TIMEOUT_SECONDS, project)
    except TimeoutError:
        return None
    return time.monotonic() - submitted_at


def _burst(api_url: str, api_key: str, scratch: Path, dagster_home: Path, size: int) -> dict:
    """`size` answers back to back in the webhook project: how long until all are curated, and how many refreshes."""
    import dagster as dg

    # Let the trials' last refresh end, so that every refresh counted below was asked for by the burst.
    time.sleep(20)
    began = time.time()
    started = time.monotonic()
    submitted = [_submit(api_url, api_key, WEBHOOK_PROJECT, f"burst {answer}") for answer in range(size)]
    submitting = time.monotonic() - started
    _wait_for(
        lambda: all((_curated(scratch, WEBHOOK_PROJECT) or {}).get(rid) == text for rid, text in submitted),
        TRIAL_TIMEOUT_SECONDS,
        "burst",
    )
    all_curated = time.monotonic() - started
    time.sleep(15)  # a refresh asked for late would show up here
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(
            filters=dg.RunsFilter(
                job_name=f"{WEBHOOK_PROJECT}_refresh_curation",
                created_after=datetime.datetime.fromtimestamp(began, tz=datetime.UTC),
            )
        )
    return {
        "answers": size,
        "seconds_to_submit_all": round(submitting, 2),
        "seconds_until_all_curated": round(all_curated, 2),
        "refresh_runs": len(runs),
    }


def _summary(latencies: list[float], lost: int) -> dict:
    ordered = sorted(latencies)

    def percentile(share: float) -> float | None:
        if not ordered:
            return None
        # Nearest rank: with n samples, p95 is the ceil(0.95 n)-th smallest (the largest for n <= 20).
        return round(ordered[math.ceil(share * len(ordered)) - 1], 2)

    return {
        "samples_seconds": [round(value, 2) for value in latencies],
        "lost": lost,
        "p50": round(statistics.median(ordered), 2) if ordered else None,
        "p95": percentile(0.95),
        "max": round(ordered[-1], 2) if ordered else None,
        "mean": round(statistics.fmean(ordered), 2) if ordered else None,
    }


def _table(result: dict) -> str:
    lines = ["", "side            p50 s   p95 s   max s   lost"]
    for project, summary in result["sides"].items():
        lines.append(
            f"{project:14s} {summary['p50']!s:>6} {summary['p95']!s:>7} {summary['max']!s:>7} {summary['lost']:>6}"
        )
    if result["burst"]:
        burst = result["burst"]
        lines.append(
            f"burst: {burst['answers']} answers in {burst['seconds_to_submit_all']} s, all curated after "
            f"{burst['seconds_until_all_curated']} s, {burst['refresh_runs']} refresh run(s)"
        )
    lines.append(
        f"load average (1/5/15 min) before {result['load_average_1_5_15_before']}, after {result['load_average_1_5_15_after']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
