"""The first full cycle, the tutorial's script against our pipeline, each side on a fresh embedded Argilla.

    python bench/first_cycle.py --records 15000 --annotators 4 [--pairs 1] [--output results.json]

One Dolly-shaped source file (`dolly_generator.py`) is written; then the sides run in the order
baseline, pipeline (A B) then pipeline, baseline (B A), `--pairs` times. Each side runs in an
interpreter of its own against a server of its own started for it (start-up not timed):

- baseline (`baseline_tutorial.py`, the tutorial as written): push; simulated annotators answer
  30% of the records (not timed, the same seeded plan on both sides); collect, statistics,
  charts, curated dataset;
- pipeline (the real assets, in-process runs as the quickstart runs them): plan (load, validate,
  quality signals, assign), push (every annotator's shard in one run); the same answers; the
  refresh (collect, statistics, review queue, curated dataset).

Timed: what a user waits for, each step's wall clock including Dagster's per-run cost. Prints
and writes one JSON object: every run's figures, each side's medians and the ratio of medians.

After its first cycle (outside its total), the pipeline side also times the next cycle's two
costs (issue 12, target 5): the push of an unchanged plan, and the refresh after 1% more answers,
each as a share of its first-cycle counterpart (`next_cycle`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))  # the shared harness in curation_assets_tests

ANSWERED_SHARE = 0.3
NEXT_ANSWERED_SHARE = 0.01  # issue 12 target 5: the refresh after 1% new answers


def run_side(side: str, source: Path, annotators: int, work_dir: Path) -> dict:
    """One side's first cycle on a fresh server, in this interpreter."""
    import baseline_tutorial
    import dagster as dg
    import pipeline_vs_baseline as side_by_side

    from curation_assets.dagster_storage import INSTANCE_OVERRIDES
    from curation_assets.local_argilla.process import start_embedded_argilla

    team = side_by_side.ANNOTATOR_NAMES[:annotators]
    records = int(json.loads((work_dir.parent / "records.json").read_text())["records"])
    seconds: dict[str, float] = {}
    server = start_embedded_argilla(work_dir / "argilla", annotator_names=team)
    try:
        if side == "baseline":
            timings = baseline_tutorial.BaselineTimings()
            shares = baseline_tutorial.push(server.url, server.owner_api_key, source, timings)
            seconds["push"] = timings.push_seconds
            side_by_side.answer(
                server,
                {a: baseline_tutorial.BASELINE_WORKSPACE_PREFIX + a for a in team},
                side_by_side.spread(round(records * ANSWERED_SHARE), team),
                dict(shares),
                baseline_tutorial.BASELINE_DATASET,
                seed=1,
            )
            feedback = baseline_tutorial.collect(
                server.url, server.owner_api_key, list(shares), work_dir / "baseline-output", timings
            )
            seconds["collect"] = timings.collect_seconds
        else:
            # The code location, loaded as Dagster's run worker loads it before a run (what its import does is
            # part of the path: it freezes what it left alive out of the garbage collector's walks).
            import curation_assets.definitions  # noqa: F401

            (work_dir / "dagster").mkdir()
            with dg.instance_for_test(temp_dir=str(work_dir / "dagster"), overrides=INSTANCE_OVERRIDES) as instance:
                pipeline = side_by_side.PipelineRunner(server, instance, work_dir, source)
                started = time.perf_counter()
                plan = pipeline.plan()
                seconds["plan"] = time.perf_counter() - started
                started = time.perf_counter()
                pushed = pipeline.push_all_shards()
                seconds["push"] = time.perf_counter() - started
                assert pushed["records_pushed"] == records, pushed
                pending = plan["annotator"].value_counts().to_dict()
                side_by_side.answer(
                    server,
                    {a: a for a in team},
                    side_by_side.spread(round(records * ANSWERED_SHARE), team),
                    pending,
                    pipeline.dataset_name,
                    seed=1,
                )
                started = time.perf_counter()
                feedback, first_steps = pipeline.refresh()
                seconds["collect"] = time.perf_counter() - started
                next_cycle = measure_next_cycle(pipeline, server, team, records, pending, first_steps)
    finally:
        server.stop()
    seconds = {name: round(value, 3) for name, value in seconds.items()}
    return {
        "side": side,
        "seconds": seconds,
        "total_seconds": round(sum(seconds.values()), 3),
        "statuses": feedback["status"].value_counts().to_dict(),
        **({"next_cycle": next_cycle} if side == "pipeline" else {}),
        "load_average_after": os.getloadavg()[0],
    }


def measure_next_cycle(pipeline, server, team: list[str], records: int, pending: dict, first_steps: dict) -> dict:
    """Issue 12's target 5, after the first cycle (not in its total): a push of the same plan (nothing changed), and the
    refresh after 1% more answers, each against its first-cycle counterpart."""
    import pipeline_vs_baseline as side_by_side

    started = time.perf_counter()
    repushed = pipeline.push_all_shards()
    repush_seconds = time.perf_counter() - started
    assert repushed["records_pushed"] == 0, repushed
    side_by_side.answer(
        server, {a: a for a in team}, side_by_side.spread(round(records * NEXT_ANSWERED_SHARE), team), pending,
        pipeline.dataset_name, seed=2,
    )  # fmt: skip
    started = time.perf_counter()
    _, steps = pipeline.refresh()
    return {
        "repush_no_change_seconds": round(repush_seconds, 3),
        "records_unchanged": repushed["records_unchanged"],
        "refresh_after_new_answers_seconds": round(time.perf_counter() - started, 3),
        "new_answers_share": NEXT_ANSWERED_SHARE,
        # Dagster's step durations, the asset's own work without the run around it.
        "first_refresh_steps_seconds": first_steps,
        "refresh_after_new_answers_steps_seconds": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=15_000)
    parser.add_argument("--annotators", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=1, help="how many times to run A B then B A")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--side", choices=["baseline", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.side:
        print(json.dumps(run_side(arguments.side, arguments.source, arguments.annotators, arguments.work_dir)))
        return

    from dolly_generator import write_source_file

    runs = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "records.json").write_text(json.dumps({"records": arguments.records}))
        source = write_source_file(arguments.records, root / "dolly.parquet")
        orders = [["baseline", "pipeline"], ["pipeline", "baseline"]] * arguments.pairs
        for index, side in enumerate(side for order in orders for side in order):
            work_dir = root / f"run-{index}-{side}"
            work_dir.mkdir()
            load_before = os.getloadavg()[0]
            output = subprocess.run(
                [sys.executable, __file__, "--side", side, "--source", str(source), "--work-dir", str(work_dir),
                 "--annotators", str(arguments.annotators)],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            figures = {**json.loads(output.strip().splitlines()[-1]), "load_average_before": load_before}
            print(json.dumps(figures), file=sys.stderr)
            runs.append(figures)

    def median_of(side: str, key: str | None = None) -> float:
        values = [run["total_seconds"] if key is None else run["seconds"][key] for run in runs if run["side"] == side]
        return round(statistics.median(values), 3)

    medians = {
        side: {"total": median_of(side), **{key: median_of(side, key) for key in runs_of_side(runs, side)}}
        for side in ("baseline", "pipeline")
    }
    result = {
        "benchmark": "first_cycle",
        "records": arguments.records,
        "annotators": arguments.annotators,
        "answered_share": ANSWERED_SHARE,
        "orders": "AB then BA" + (f", {arguments.pairs} times" if arguments.pairs > 1 else ""),
        "cpu_count": os.cpu_count(),
        "runs": runs,
        "medians_seconds": medians,
        "speedup_of_medians": round(medians["baseline"]["total"] / medians["pipeline"]["total"], 2),
        "next_cycle": next_cycle_summary([run for run in runs if run["side"] == "pipeline"]),
        "load_averages": [run["load_average_before"] for run in runs] + [runs[-1]["load_average_after"]],
        "command": " ".join(["python", "bench/first_cycle.py", *sys.argv[1:]]),
    }
    text = json.dumps(result, indent=1)
    if arguments.output:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(text + "\n")
    print(text)


def next_cycle_summary(pipeline_runs: list[dict]) -> dict:
    """Medians over the pipeline's runs: the no-change push against the first push (goal under 5%), the refresh after
    1% new answers against the first, full collection (goal under 10%), whole runs and the collection step alone."""

    def median(values) -> float:
        return round(statistics.median(values), 3)

    def step(steps: dict, name: str) -> float:
        return next(seconds for key, seconds in steps.items() if key.endswith(name))

    cycles = [(run["seconds"], run["next_cycle"]) for run in pipeline_runs]
    return {
        "repush_no_change_seconds": median(cycle["repush_no_change_seconds"] for _, cycle in cycles),
        "repush_share_of_first_push": median(
            cycle["repush_no_change_seconds"] / first["push"] for first, cycle in cycles
        ),
        "refresh_after_1_percent_seconds": median(cycle["refresh_after_new_answers_seconds"] for _, cycle in cycles),
        "refresh_share_of_first_collection": median(
            cycle["refresh_after_new_answers_seconds"] / first["collect"] for first, cycle in cycles
        ),
        "collection_step_share_of_first": median(
            step(cycle["refresh_after_new_answers_steps_seconds"], "collected_feedback")
            / step(cycle["first_refresh_steps_seconds"], "collected_feedback")
            for _, cycle in cycles
        ),
    }


def runs_of_side(runs: list[dict], side: str) -> list[str]:
    return list(next(run for run in runs if run["side"] == side)["seconds"])


if __name__ == "__main__":
    main()
