"""Every benchmark of issue 4 in one command: a table on stdout, bench/results/<timestamp>.md and .png.

    python bench/run_all.py            # full sizes: 15k (with baseline), 150k, processing 10k/100k/1M (~30 min)
    python bench/run_all.py --quick    # small sizes, a few minutes: a smoke run of the same harness
    python bench/run_all.py --parts main processing --reuse bench/results/<earlier>.json
                                       # measure some parts again, take the others from an earlier run

Each part runs in its own subprocess (one fresh embedded Argilla per part; the processing
path one interpreter per size for a clean peak-memory figure). The raw figures are kept in
bench/results/<timestamp>.json beside the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"

FULL = {
    "main": {"records": 15_000, "annotators": 4, "extra_annotators": 4, "answered_share": 0.3},
    "large": {"records": 150_000, "annotators": 4, "extra_annotators": 0, "answered_share": 0.01},
    "processing": [10_000, 100_000, 1_000_000],
}
QUICK = {
    "main": {"records": 1_500, "annotators": 4, "extra_annotators": 4, "answered_share": 0.3},
    "large": {"records": 6_000, "annotators": 4, "extra_annotators": 0, "answered_share": 0.01},
    "processing": [10_000, 50_000],
}


PARTS = ("main", "large", "processing")


def machine() -> dict:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "memory_gib": round(memory_gib, 1), "python": sys.version.split()[0]}


def last_json_line(command: list[str]) -> list[dict]:
    print("$", " ".join(command), flush=True)
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-4000:]}")
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def side_by_side(size: dict, baseline: bool) -> dict:
    command = [
        sys.executable, str(BENCH_DIR / "pipeline_vs_baseline.py"),
        "--records", str(size["records"]),
        "--annotators", str(size["annotators"]),
        "--extra-annotators", str(size["extra_annotators"]),
        "--answered-share", str(size["answered_share"]),
    ]  # fmt: skip
    if not baseline:
        command.append("--no-baseline")
    return last_json_line(command)[-1]


def verdict(passed: bool) -> str:
    return "met" if passed else "**missed**"


def table(main: dict, large: dict, processing: list[dict]) -> list[list[str]]:
    rows = []
    pipeline_full = (
        main["seconds"]["pipeline_plan"]
        + main["seconds"]["pipeline_first_push"]
        + main["seconds"]["pipeline_full_collection"]
    )
    baseline_full = main["baseline"]["push_seconds"] + main["baseline"]["collect_seconds"]
    ratio = baseline_full / pipeline_full
    rows.append([
        f"1. full run, {main['records']:,} records, {main['annotators']} annotators",
        f"baseline {baseline_full:.1f} s (push {main['baseline']['push_seconds']:.1f} + collect {main['baseline']['collect_seconds']:.1f}); "
        f"pipeline {pipeline_full:.1f} s (plan {main['seconds']['pipeline_plan']:.1f} + push {main['seconds']['pipeline_first_push']:.1f} "
        f"+ collect {main['seconds']['pipeline_full_collection']:.1f}); **{ratio:.2f}x**",
        ">= 2x", verdict(ratio >= 2),
    ])  # fmt: skip
    for figures in (main, large):
        first, noop = figures["seconds"]["pipeline_first_push"], figures["seconds"]["pipeline_noop_push"]
        steps = figures["noop_push_counts"]["step_seconds"], figures["first_push_counts"]["step_seconds"]
        rows.append([
            f"2. shards re-materialized, nothing changed, {figures['records']:,} records",
            f"{noop:.1f} s vs first push {first:.1f} s: **{100 * noop / first:.1f}%** (asset steps alone {100 * steps[0] / steps[1]:.1f}%); "
            f"pushed {figures['noop_push_counts']['records_pushed']}",
            "< 5%", verdict(noop / first < 0.05),
        ])  # fmt: skip
    for figures in (main, large):
        refresh, full = figures["seconds"]["pipeline_refresh"], figures["seconds"]["pipeline_full_collection"]
        feedback_share = (
            figures["refresh_steps"]["collected_feedback"] / figures["full_collection_steps"]["collected_feedback"]
        )
        rows.append([
            f"3. refresh after {100 * figures['refresh_share']:.0f}% new responses, {figures['records']:,} records",
            f"{refresh:.1f} s vs full collection {full:.1f} s: **{100 * refresh / full:.0f}%** "
            f"(feedback step alone {100 * feedback_share:.0f}%); sensor asked for {figures['refresh_requested_by_sensor']}",
            "< 10%", verdict(refresh / full < 0.10),
        ])  # fmt: skip
    rows.append([
        f"4. sensor tick, {main['records']:,} records, {main['tick_annotators']} annotators",
        f"median **{main['tick_median_seconds']:.2f} s**, max {main['tick_max_seconds']:.2f} s; after new work {main['busy_tick_seconds']:.2f} s",
        "< 1 s", verdict(main["tick_max_seconds"] < 1),
    ])  # fmt: skip
    processing = [figures for figures in processing if figures.get("mode", "assets") == "assets"]
    smallest = processing[0]
    for figures in processing:
        per_record = figures["total_seconds"] / figures["records"]
        growth = per_record / (smallest["total_seconds"] / smallest["records"])
        passed = figures["records"] < 1_000_000 or (figures["total_seconds"] < 120 and figures["peak_rss_mib"] < 4096)
        rows.append([
            f"5. processing path without Argilla, {figures['records']:,} records",
            f"**{figures['total_seconds']:.1f} s**, peak **{figures['peak_rss_mib']:,} MiB**; per record {growth:.2f}x the smallest size's; "
            + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in step_seconds(figures).items()),
            "linear; 1M < 120 s and < 4 GiB", verdict(passed and growth < 1.5),
        ])  # fmt: skip
    return rows


def step_seconds(figures: dict) -> dict[str, float]:
    """Seconds per step of a processing-path run: one asset step per interpreter now, stages of one process before."""
    if "steps" in figures:
        return {name: sum(step["seconds"].values()) for name, step in figures["steps"].items()}
    return {stage: seconds for stage, seconds in figures["seconds"].items() if stage != "simulate_answers"}


def markdown(rows: list[list[str]], about: dict) -> str:
    lines = [
        f"# Benchmark run {about['timestamp']}",
        "",
        f"Machine: {about['machine']['cores']} cores, {about['machine']['memory_gib']} GiB, Python {about['machine']['python']}. "
        f"Mode: {about['mode']}. Command: `{about['command']}`.",
        *(f"The `{part}` figures are from the earlier run {timestamp}." for part, timestamp in about["reused"].items()),
        "",
        "| target | measured | goal | verdict |",
        "| --- | --- | --- | --- |",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
    ]
    return "\n".join(lines)


def plot(path: Path, main: dict, large: dict, processing: list[dict], about: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (time_axis, memory_axis, refresh_axis) = plt.subplots(1, 3, figsize=(14, 4), dpi=90)
    sizes = [figures["records"] for figures in processing]
    seconds = [figures["total_seconds"] for figures in processing]
    time_axis.loglog(sizes, seconds, "o-", label="measured")
    time_axis.loglog(
        sizes, [seconds[0] * size / sizes[0] for size in sizes], "--", color="grey", label="linear from smallest"
    )
    time_axis.set(title="Processing path without Argilla", xlabel="records", ylabel="seconds")
    time_axis.legend()
    memory_axis.loglog(sizes, [figures["peak_rss_mib"] for figures in processing], "o-", color="#dd8452")
    memory_axis.axhline(4096, color="red", linestyle=":", label="4 GiB")
    memory_axis.set(title="Peak memory", xlabel="records", ylabel="MiB")
    memory_axis.legend()
    labels, full, refresh = [], [], []
    for figures in (main, large):
        labels.append(f"{figures['records']:,}")
        full.append(figures["seconds"]["pipeline_full_collection"])
        refresh.append(figures["seconds"]["pipeline_refresh"])
    positions = range(len(labels))
    refresh_axis.bar([p - 0.2 for p in positions], full, width=0.4, label="full collection")
    refresh_axis.bar([p + 0.2 for p in positions], refresh, width=0.4, label="refresh after 1%")
    refresh_axis.set_xticks(list(positions), labels)
    refresh_axis.set(title="Feedback -> statistics -> curated", xlabel="records", ylabel="seconds")
    refresh_axis.legend()
    figure.suptitle(
        f"{about['timestamp']} on {about['machine']['cores']} cores, {about['machine']['memory_gib']} GiB ({about['mode']})"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    parser.add_argument("--render", type=Path, help="only rebuild the table, markdown and plot from a results .json")
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts to measure (default: all)"
    )
    parser.add_argument(
        "--reuse", type=Path, help="an earlier run's .json: the parts not measured now are taken from it"
    )
    arguments = parser.parse_args()
    if set(arguments.parts) != set(PARTS) and not arguments.reuse:
        parser.error("--parts without every part needs --reuse with an earlier run's .json for the others")
    if arguments.render:
        render(arguments.render)
        return
    sizes = QUICK if arguments.quick else FULL
    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    about = {
        "timestamp": timestamp,
        "machine": machine(),
        "mode": "quick" if arguments.quick else "full",
        "command": " ".join(["python bench/run_all.py", *sys.argv[1:]]),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    raw_path = RESULTS_DIR / f"{timestamp}.json"
    figures = dict(about)
    if arguments.reuse:
        earlier = json.loads(arguments.reuse.read_text())
        reused = [part for part in PARTS if part not in arguments.parts]
        figures.update({part: earlier[part] for part in reused})
        figures["reused"] = {part: earlier["timestamp"] for part in reused}
    measure = {
        "main": lambda: side_by_side(sizes["main"], baseline=True),
        "large": lambda: side_by_side(sizes["large"], baseline=False),
        "processing": lambda: last_json_line(
            [sys.executable, str(BENCH_DIR / "processing_path.py"), "--records", *map(str, sizes["processing"])]
        ),
    }
    for part in arguments.parts:
        figures[part] = measure[part]()
        # Saved after every part, so a run stopped halfway keeps what it measured.
        raw_path.write_text(json.dumps(figures, indent=1))
    render(raw_path)


def render(raw_path: Path) -> None:
    """Table, markdown and plot from a run's raw figures."""
    figures = json.loads(raw_path.read_text())
    about = {key: figures[key] for key in ("timestamp", "machine", "mode", "command")}
    about["reused"] = figures.get("reused", {})
    rows = table(figures["main"], figures["large"], figures["processing"])
    report = markdown(rows, about)
    stem = raw_path.with_suffix("")
    stem.with_suffix(".md").write_text(report + f"\n![scaling]({stem.name}.png)\n")
    plot(stem.with_suffix(".png"), figures["main"], figures["large"], figures["processing"], about)
    print(report)
    print(f"written: {stem}.md, .json, .png")


if __name__ == "__main__":
    main()
