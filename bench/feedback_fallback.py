"""What the incremental feedback read saves, and what its fallback costs on a server that cannot answer it.

    python bench/feedback_fallback.py --records 15000 --annotators 4 --server postgres --workers 2 --rounds 3 \
        --answered-share 0.2 --lock /work/bench.lock

`collected_feedback` reads only the records changed since its last read when the server says that a
record's updated_at moves with its answers: the embedded server's search engine announces it in
GET /api/v1/status. Another server (upstream Argilla with Elasticsearch, the Hugging Face Space)
does not, and the asset then reads every record of every annotator dataset on each refresh
(client.changes_since_now() returns None). This benchmark runs the real refresh job (feedback ->
statistics -> curated, in-process `dg.materialize` of the real assets) against one embedded server,
both ways side by side, after the same share of new answers each time:

  incremental   as the product runs against the embedded server
  full read     the same run with changes_since_now() answering None, which is exactly what the
                client does for a server that does not announce the flag (the path taken is the
                asset's own fallback; only the announcement is withheld)

The order alternates per round. An incremental refresh reads what changed since the previous
incremental one (so also the answers given before the full-read refresh in between: a small
handicap for it, not for the fallback). What it does not measure: Elasticsearch's own cost of the
full read (the records listing comes from argilla-server's database either way).

Writes bench/results/feedback-fallback-<server>-<timestamp>.json and prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import dagster as dg

from curation_assets.dagster_storage import INSTANCE_OVERRIDES

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))  # the shared harness in curation_assets_tests

from dolly_generator import write_source_file  # noqa: E402
from pipeline_vs_baseline import ANNOTATOR_NAMES, PipelineRunner, answer, spread  # noqa: E402

from curation_assets.argilla_adapter.client import ArgillaClient  # noqa: E402
from curation_assets.local_argilla.process import start_embedded_argilla  # noqa: E402
from curation_assets.team.services import TeamServices  # noqa: E402
from curation_assets_tests.harness import REFRESH, metadata_of  # noqa: E402

RESULTS = BENCH_DIR / "results"


def timed_refresh(pipeline: PipelineRunner, full_read: bool) -> dict:
    """One refresh run; wall seconds, the feedback step's seconds, what it read."""
    with ExitStack() as stack:
        if full_read:
            stack.enter_context(mock.patch.object(ArgillaClient, "changes_since_now", return_value=None))
        started = time.perf_counter()
        result = pipeline.project.materialize(REFRESH)
        wall = time.perf_counter() - started
    steps = {event.step_key: event.event_specific_data.duration_ms / 1000 for event in result.get_step_success_events()}
    node = pipeline.project.node("collected_feedback")
    metadata = metadata_of(result, node)
    return {
        "wall_seconds": round(wall, 3),
        "feedback_step_seconds": round(next(seconds for key, seconds in steps.items() if node in key), 3),
        "records_read": metadata["records_read"],
        "datasets_read_in_full": len(metadata["datasets_read_in_full"]),
        "rows": metadata["rows"],
    }


def run(
    records: int,
    annotators: int,
    server_kind: str,
    workers: int,
    rounds: int,
    share: float,
    answered_before: float,
    lock_path: str | None = None,
) -> dict:
    team = ANNOTATOR_NAMES[:annotators]
    figures: dict = {
        "records": records,
        "annotators": annotators,
        "server": server_kind,
        "workers": workers,
        "answered_share_before": answered_before,
        "answered_share_per_refresh": share,
    }
    with tempfile.TemporaryDirectory() as directory, ExitStack() as stack:
        work_dir = Path(directory)
        database_url = redis_url = None
        if server_kind == "postgres":
            # As root the cluster runs as the postgres user: a folder that user can reach.
            postgres_folder = Path(tempfile.mkdtemp(prefix="bench-postgres-"))
            stack.callback(shutil.rmtree, postgres_folder, True)
            services = stack.enter_context(
                TeamServices(work_dir / "services", postgres_folder=postgres_folder, use_environment=False)
            )
            database_url, redis_url = services.database_urls.argilla, services.redis_url
        source = write_source_file(records, work_dir / "dolly.parquet")
        server = start_embedded_argilla(
            work_dir / "argilla", annotator_names=team, database_url=database_url, redis_url=redis_url, workers=workers
        )
        stack.callback(server.stop)
        (work_dir / "dagster").mkdir()
        instance = stack.enter_context(
            dg.instance_for_test(temp_dir=str(work_dir / "dagster"), overrides=INSTANCE_OVERRIDES)
        )
        pipeline = PipelineRunner(server, instance, work_dir, source)
        plan = pipeline.plan()
        pipeline.push_all_shards()
        pending = plan["annotator"].value_counts().to_dict()
        answer(
            server,
            {a: a for a in team},
            spread(round(records * answered_before), team),
            pending,
            pipeline.dataset_name,
            seed=1,
        )
        if lock_path:
            # The setup above (server, push, answers) is no measurement: only what follows holds the machine's lock.
            waited = time.perf_counter()
            lock = stack.enter_context(open(lock_path, "a"))  # noqa: SIM115 (closed by the stack)
            fcntl.flock(lock, fcntl.LOCK_EX)
            figures["lock"] = {
                "path": lock_path,
                "waited_seconds": round(time.perf_counter() - waited, 1),
                "load_average_1min_at_acquisition": round(os.getloadavg()[0], 2),
            }
        figures["first_collection"] = timed_refresh(pipeline, full_read=False)  # full: nothing cached yet
        measured = {"incremental": [], "full read": []}
        for round_number in range(rounds):
            order = ["incremental", "full read"] if round_number % 2 == 0 else ["full read", "incremental"]
            for mode in order:
                answer(
                    server,
                    {a: a for a in team},
                    spread(round(records * share), team),
                    pending,
                    pipeline.dataset_name,
                    seed=10 + len(measured["incremental"]) + len(measured["full read"]),
                )
                measured[mode].append(timed_refresh(pipeline, full_read=mode == "full read"))
        figures["refreshes"] = measured
        for mode, runs in measured.items():
            figures[f"{mode} median"] = {
                key: statistics.median(run[key] for run in runs)
                for key in ("wall_seconds", "feedback_step_seconds", "records_read")
            }
        incremental, full = figures["incremental median"], figures["full read median"]
        figures["full read / incremental, refresh wall"] = round(full["wall_seconds"] / incremental["wall_seconds"], 2)
        figures["full read / incremental, feedback step"] = round(
            full["feedback_step_seconds"] / incremental["feedback_step_seconds"], 2
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=15_000)
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--server", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument(
        "--workers", type=int, default=None, help="server processes (default: 2 on postgres, 1 on sqlite)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="refreshes each way, alternated")
    parser.add_argument("--share", type=float, default=0.01, help="share of records newly answered before each refresh")
    parser.add_argument(
        "--answered-share", type=float, default=0.3, help="share of records answered before the first collection"
    )
    parser.add_argument(
        "--lock",
        metavar="FILE",
        help="hold this lock (flock) from the first collection to the end: the machine's benchmark lock, taken after "
        "the setup so that the figures, not the setup, wait for it",
    )
    arguments = parser.parse_args()
    workers = arguments.workers or (2 if arguments.server == "postgres" else 1)
    load_before = os.getloadavg()
    figures = run(
        arguments.records,
        arguments.annotators,
        arguments.server,
        workers,
        arguments.rounds,
        arguments.share,
        arguments.answered_share,
        arguments.lock,
    )
    now = datetime.datetime.now(datetime.UTC)
    figures["about"] = {
        "timestamp": now.isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/feedback_fallback.py", *sys.argv[1:]]),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"feedback-fallback-{arguments.server}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures))
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
