"""Our pipeline and the tutorial's baseline, side by side against one fresh embedded Argilla.

    python bench/pipeline_vs_baseline.py --records 15000 --annotators 4 [--no-baseline] [--extra-annotators 4]

One invocation starts one embedded server, writes a Dolly-shaped source file, and runs:
the baseline's push (bench/baseline_tutorial.py) and our pipeline's plan + push (in-process
`dg.materialize` of the real assets with the real ArgillaResource); simulated annotators
answer a share of both sides' records over REST, as the web UI does; both collect, chart and
curate. Then, pipeline only: the shards re-materialized with nothing changed, 1% more records
answered and the sensor-triggered refresh (feedback -> statistics -> curated), and sensor
ticks, optionally after more annotators joined. Prints one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import httpx

from curation_assets.dagster_storage import INSTANCE_OVERRIDES

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))  # the shared harness in curation_assets_tests

import baseline_tutorial  # noqa: E402
from dolly_generator import write_source_file  # noqa: E402

from curation_assets.local_argilla.process import start_embedded_argilla  # noqa: E402
from curation_assets.quickstart.simulation import SimulationPlan, simulate_annotator  # noqa: E402
from curation_assets_tests.harness import REFRESH, ProjectOnServer  # noqa: E402

ANNOTATOR_NAMES = ["ana", "bruno", "chen", "dora", "emil", "fang", "gita", "hugo", "ines", "jon", "kai", "lea"]
PROJECT_NAME = "bench"


class Stopwatch:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def time(self, name: str, work):
        started = time.perf_counter()
        result = work()
        self.seconds[name] = round(time.perf_counter() - started, 3)
        return result


class PipelineRunner:
    """A project declaring the generated file, its assets materialized in-process as `dagster dev` runs them."""

    def __init__(self, server, instance: dg.DagsterInstance, work_dir: Path, source: Path):
        self.instance = instance
        self.project = ProjectOnServer(
            server, instance, work_dir / "pipeline", name=PROJECT_NAME, source={"file": str(source)}
        )
        self.dataset_name = self.project.dataset_name

    def plan(self):
        return self.project.plan()

    def push_all_shards(self) -> dict:
        """Every annotator's shard in one run, as the quickstart and a backfill of all partitions run it; counts summed
        over the partitions' materializations, plus the step time (the asset's own work)."""
        result = self.project.push_shards_in_one_run()
        pushed = Counter()
        for event in result.get_asset_materialization_events():
            for key in ("records_pushed", "records_unchanged", "records_removed_unanswered"):
                pushed[key] += event.materialization.metadata[key].value
        step_seconds = sum(event.event_specific_data.duration_ms for event in result.get_step_success_events()) / 1000
        return {**pushed, "step_seconds": round(step_seconds, 3)}

    def refresh(self):
        result = self.project.materialize(REFRESH)
        durations = {
            event.step_key: round(event.event_specific_data.duration_ms / 1000, 3)
            for event in result.get_step_success_events()
        }
        return result.output_for_node(self.project.node("collected_feedback")), durations

    def sensor_tick(self, cursor: str | None):
        started = time.perf_counter()
        result = self.project.sensor_tick(cursor)
        return result, time.perf_counter() - started


def answer(
    server,
    workspaces_by_annotator: dict[str, str],
    counts: dict[str, int],
    pending: dict[str, int],
    dataset_name: str,
    seed: int,
) -> Counter:
    """Simulated annotators, all at once (they work at the same time), each answering `counts[annotator]` records."""
    keys = {account.username: account.api_key for account in server.credentials.annotators}

    def one(annotator: str) -> Counter:
        if counts[annotator] <= 0 or pending[annotator] <= 0:
            return Counter()
        plan = SimulationPlan(share=min(1.0, counts[annotator] / pending[annotator]), seed=seed)
        return simulate_annotator(
            server.url, keys[annotator], workspaces_by_annotator[annotator], plan, dataset_name=dataset_name
        )

    with ThreadPoolExecutor(max_workers=len(counts)) as pool:
        done = list(pool.map(one, sorted(counts)))
    total = sum(done, Counter())
    for annotator, actions in zip(sorted(counts), done):
        pending[annotator] -= sum(actions.values())
    return total


def spread(total: int, annotators: list[str]) -> dict[str, int]:
    base, extra = divmod(total, len(annotators))
    return {name: base + (1 if index < extra else 0) for index, name in enumerate(sorted(annotators))}


def add_annotators(server, names: list[str]) -> None:
    owner = {"X-Argilla-Api-Key": server.owner_api_key}
    for name in names:
        httpx.post(
            f"{server.url}/api/v1/users",
            headers=owner,
            json={"first_name": name, "username": name, "password": f"{name}-bench-password", "role": "annotator"},
            timeout=30,
        ).raise_for_status()


def run(
    records: int,
    annotators: int,
    answered_share: float,
    refresh_share: float,
    with_baseline: bool,
    extra_annotators: int,
    ticks: int,
) -> dict:
    team = ANNOTATOR_NAMES[:annotators]
    figures: dict = {
        "records": records,
        "annotators": annotators,
        "answered_share": answered_share,
        "refresh_share": refresh_share,
    }
    watch = Stopwatch()
    with tempfile.TemporaryDirectory() as directory:
        work_dir = Path(directory)
        source = write_source_file(records, work_dir / "dolly.parquet")
        server = start_embedded_argilla(work_dir / "argilla", annotator_names=team)
        try:
            (work_dir / "dagster").mkdir()
            with dg.instance_for_test(temp_dir=str(work_dir / "dagster"), overrides=INSTANCE_OVERRIDES) as instance:
                pipeline = PipelineRunner(server, instance, work_dir, source)
                baseline = baseline_tutorial.BaselineTimings()

                # 1. First push, both sides.
                if with_baseline:
                    baseline_shares = baseline_tutorial.push(server.url, server.owner_api_key, source, baseline)
                plan = watch.time("pipeline_plan", pipeline.plan)
                figures["first_push_counts"] = watch.time("pipeline_first_push", pipeline.push_all_shards)

                # Simulated annotators answer the same share on both sides.
                pending = plan["annotator"].value_counts().to_dict()
                figures["answered"] = dict(
                    answer(
                        server,
                        {a: a for a in team},
                        spread(round(records * answered_share), team),
                        pending,
                        pipeline.dataset_name,
                        seed=1,
                    )
                )
                if with_baseline:
                    baseline_pending = dict(baseline_shares)
                    answer(
                        server,
                        {a: baseline_tutorial.BASELINE_WORKSPACE_PREFIX + a for a in team},
                        spread(round(records * answered_share), team),
                        baseline_pending,
                        baseline_tutorial.BASELINE_DATASET,
                        seed=1,
                    )

                # 1. Full collection, both sides.
                feedback, durations = watch.time("pipeline_full_collection", pipeline.refresh)
                figures["full_collection_steps"] = durations
                if with_baseline:
                    baseline_feedback = baseline_tutorial.collect(
                        server.url, server.owner_api_key, list(baseline_shares), work_dir / "baseline-output", baseline
                    )
                    figures["baseline"] = {
                        "push_seconds": round(baseline.push_seconds, 3),
                        "collect_seconds": round(baseline.collect_seconds, 3),
                        **baseline.details,
                        "statuses": baseline_feedback["status"].value_counts().to_dict(),
                    }
                figures["pipeline_statuses"] = feedback["status"].value_counts().to_dict()

                # 2. Shards re-materialized with nothing changed.
                figures["noop_push_counts"] = watch.time("pipeline_noop_push", pipeline.push_all_shards)

                # 3. 1% more records answered; the sensor notices; the refresh runs.
                first_tick, _ = pipeline.sensor_tick(None)
                cursor = first_tick.cursor
                figures["refresh_answered"] = dict(
                    answer(
                        server,
                        {a: a for a in team},
                        spread(round(records * refresh_share), team),
                        pending,
                        pipeline.dataset_name,
                        seed=2,
                    )
                )
                tick, tick_seconds = pipeline.sensor_tick(cursor)
                figures["refresh_requested_by_sensor"] = [request.job_name for request in tick.run_requests]
                figures["busy_tick_seconds"] = round(tick_seconds, 3)
                refreshed, durations = watch.time("pipeline_refresh", pipeline.refresh)
                figures["refresh_steps"] = durations
                figures["refresh_statuses"] = refreshed["status"].value_counts().to_dict()

                # 4. Sensor ticks, after more annotators joined and got their shares.
                if extra_annotators:
                    newcomers = ANNOTATOR_NAMES[annotators : annotators + extra_annotators]
                    add_annotators(server, newcomers)
                    tick, _ = pipeline.sensor_tick(tick.cursor)
                    instance.add_dynamic_partitions(pipeline.project.project.annotator_partitions.name, newcomers)
                    watch.time("pipeline_replan", pipeline.plan)
                    figures["rebalance_push_counts"] = watch.time("pipeline_rebalance_push", pipeline.push_all_shards)
                cursor = pipeline.sensor_tick(tick.cursor)[0].cursor
                tick_times = []
                for _ in range(ticks):
                    result, seconds = pipeline.sensor_tick(cursor)
                    tick_times.append(seconds)
                figures["tick_annotators"] = len(pipeline.project.partitions)
                figures["tick_median_seconds"] = round(statistics.median(tick_times), 3)
                figures["tick_max_seconds"] = round(max(tick_times), 3)
        finally:
            server.stop()
    figures["seconds"] = watch.seconds
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=15_000)
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument(
        "--answered-share", type=float, default=0.3, help="share of records answered before the full collection"
    )
    parser.add_argument(
        "--refresh-share", type=float, default=0.01, help="share of records newly answered before the refresh"
    )
    parser.add_argument("--no-baseline", action="store_true", help="pipeline only (for the large refresh measurement)")
    parser.add_argument(
        "--extra-annotators", type=int, default=0, help="annotators who join before the sensor ticks are timed"
    )
    parser.add_argument("--ticks", type=int, default=5)
    arguments = parser.parse_args()
    figures = run(
        arguments.records,
        arguments.annotators,
        arguments.answered_share,
        arguments.refresh_share,
        not arguments.no_baseline,
        arguments.extra_annotators,
        arguments.ticks,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
