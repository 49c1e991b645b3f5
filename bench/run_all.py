"""Issue 12's targets in one table: measured, goal, verdict.

    python bench/run_all.py                          # every part (about 90 min and 6 GiB at full sizes)
    python bench/run_all.py --parts cycle small push # some parts; the others are "not measured"
    python bench/run_all.py --use push=bench/results/argilla-logging-<t>.json --parts cycle
                                                     # take a part from a committed results file
                                                     # (or from an earlier targets-<t>.json)
    python bench/run_all.py --render bench/results/targets-<t>.json   # rebuild the table only

Parts, each the benchmark that measures it, run in its own subprocess:

- `cycle`: `first_cycle.py --records 15000 --annotators 4`: the first full cycle against the
  tutorial as written (target 2), the plan's share of it (target 4), and the next cycle: the
  push of an unchanged plan and the refresh after 1% more answers (target 5);
- `small`: the same at 400 records (target 4: no slower than the tutorial);
- `large`: the same at 150,000 records (targets 2 and 5 at that size; the simulated
  annotators answer 45,000 records per side, which is most of its hour);
- `push`: `argilla_logging.py --records 15000 --servers fast --client pipeline` with and
  without suggestions (target 3: records/s, and the ratio of the two);
- `processing`: `processing_path.py --records 1000000` (target 5: 1M records under 120 s and
  4 GiB, every non-pushing asset and check).

Writes bench/results/targets-<timestamp>.json (each part's raw figures, or the file it was
taken from) and .md (the table). Figures that are reported come from runs under
`flock /work/bench.lock` on a machine doing nothing else.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PUSH_PAYLOADS = ("pipeline without suggestions", "pipeline")


def first_cycle_command(records: int) -> list[str]:
    return [sys.executable, str(BENCH_DIR / "first_cycle.py"), "--records", str(records), "--annotators", "4"]


PARTS = {
    "cycle": lambda out: [*first_cycle_command(15_000), "--output", str(out)],
    "small": lambda out: [*first_cycle_command(400), "--output", str(out)],
    "large": lambda out: [*first_cycle_command(150_000), "--output", str(out)],
    "push": lambda out: [
        sys.executable,
        str(BENCH_DIR / "argilla_logging.py"),
        "--records",
        "15000",
        "--servers",
        "fast",
        "--client",
        "pipeline",
        "--payloads",
        *PUSH_PAYLOADS,
        "--out",
        str(out),
    ],  # fmt: skip
    "processing": lambda out: [
        sys.executable,
        str(BENCH_DIR / "processing_path.py"),
        "--records",
        "1000000",
        "--out",
        str(out),
    ],  # fmt: skip
}


def measure(part: str) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / f"{part}.json"
        command = PARTS[part](out)
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def verdict(passed: bool | None) -> str:
    return "not measured" if passed is None else "met" if passed else "**missed**"


def cycle_rows(figures: dict | None, label: str) -> list[list[str]]:
    small = label.startswith("400")
    if figures is None:
        goal = "no slower than the tutorial" if small else ">= 2x the tutorial"
        return [[f"{4 if small else 2}. first full cycle, {label}", "not measured", goal, verdict(None)]]
    baseline, pipeline = figures["medians_seconds"]["baseline"], figures["medians_seconds"]["pipeline"]
    speedup = figures["speedup_of_medians"]
    loads = ", ".join(f"{load:.1f}" for load in figures["load_averages"])
    rows = [
        [
            f"{4 if small else 2}. first full cycle, {figures['records']:,} records, {figures['annotators']} annotators",
            f"tutorial {baseline['total']:.1f} s (push {baseline['push']:.1f}, collect {baseline['collect']:.1f}); pipeline "
            f"{pipeline['total']:.1f} s (plan {pipeline['plan']:.1f}, push {pipeline['push']:.1f}, collect "
            f"{pipeline['collect']:.1f}): **{speedup:.2f}x** (medians, {figures['orders']}; load {loads})",
            "no slower (>= 1x)" if small else ">= 2x",
            verdict(speedup >= (1 if small else 2)),
        ],
    ]
    if figures["records"] == 15_000:
        rows.append(
            ["4. plan (load, validate, quality signals, assign), 15,000 records", f"**{pipeline['plan']:.2f} s**",
             "< 3 s", verdict(pipeline["plan"] < 3)]
        )  # fmt: skip
    later = figures.get("next_cycle")
    if later and not small:
        rows += [
            [
                f"5. push of an unchanged plan, {figures['records']:,} records",
                f"{later['repush_no_change_seconds']:.2f} s: **{100 * later['repush_share_of_first_push']:.1f}%** of the first push",
                "< 5%", verdict(later["repush_share_of_first_push"] < 0.05),
            ],
            [
                f"5. refresh after 1% new answers, {figures['records']:,} records",
                f"{later['refresh_after_1_percent_seconds']:.2f} s: **{100 * later['refresh_share_of_first_collection']:.0f}%** "
                f"of the first, full collection (the collection step alone "
                f"{100 * later['collection_step_share_of_first']:.0f}%)",
                "< 10%", verdict(later["refresh_share_of_first_collection"] < 0.10),
            ],
        ]  # fmt: skip
    return rows


def push_rows(figures: dict | None) -> list[list[str]]:
    if figures is None:
        return [["3. push with suggestions and metadata, 15,000 records", "not measured", ">= 3,000 records/s, "
                 "<= 1.5x the time without suggestions", verdict(None)]]  # fmt: skip
    rates = {row["payload"]: row for row in figures["summary"] if row["server"] == "fast"}
    with_suggestions, without = (
        rates["pipeline"]["records_per_s"],
        rates["pipeline without suggestions"]["records_per_s"],
    )
    loads = f"load {figures['load_average_before'][0]:.1f} before, {figures['load_average_after'][0]:.1f} after"
    return [
        ["3. push rate with suggestions and metadata, 15,000 records", f"**{with_suggestions:,.0f} records/s** ({loads})",
         ">= 3,000 records/s", verdict(with_suggestions >= 3_000)],
        ["3. the same against the push without suggestions", f"{without:,.0f} records/s without: **{without / with_suggestions:.2f}x** the time",
         "<= 1.5x", verdict(without / with_suggestions <= 1.5)],
    ]  # fmt: skip


def processing_rows(figures: dict | None) -> list[list[str]]:
    runs = [] if figures is None else [run for run in figures["runs"] if run.get("mode", "assets") == "assets"]
    million = next((run for run in runs if run["records"] == 1_000_000), None)
    if million is None:
        measured = ", ".join(
            f"{run['records']:,}: {run['total_seconds']:.0f} s, {run['peak_rss_mib']:,} MiB" for run in runs
        )
        return [["5. processing path, 1,000,000 records", "not measured" + (f" (measured {measured})" if measured else ""),
                 "< 120 s and < 4 GiB", verdict(None)]]  # fmt: skip
    return [
        ["5. processing path, 1,000,000 records", f"**{million['total_seconds']:.0f} s**, peak **{million['peak_rss_mib']:,} MiB**",
         "< 120 s and < 4 GiB", verdict(million["total_seconds"] < 120 and million["peak_rss_mib"] < 4096)],
    ]  # fmt: skip


def table(parts: dict) -> list[list[str]]:
    return [
        *cycle_rows(parts.get("cycle"), "15,000 records"),
        *cycle_rows(parts.get("large"), "150,000 records"),
        *push_rows(parts.get("push")),
        *cycle_rows(parts.get("small"), "400 records"),
        *processing_rows(parts.get("processing")),
    ]


def render(raw_path: Path) -> str:
    figures = json.loads(raw_path.read_text())
    lines = [
        f"# Issue 12 targets, {figures['timestamp']}",
        "",
        f"Machine: {figures['machine']['cores']} cores, {figures['machine']['memory_gib']} GiB. Command: `{figures['command']}`.",
        *(f"- `{part}`: taken from `{source}`" for part, source in figures["sources"].items()),
        "",
        "| target | measured | goal | verdict |",
        "| --- | --- | --- | --- |",
        *(f"| {' | '.join(row)} |" for row in table(figures["parts"])),
        "",
    ]
    report = "\n".join(lines)
    raw_path.with_suffix(".md").write_text(report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="*", choices=list(PARTS), default=list(PARTS), help="parts to measure now")
    parser.add_argument(
        "--use", nargs="*", default=[], metavar="PART=FILE", help="take a part from an earlier results file instead"
    )
    parser.add_argument("--render", type=Path, help="only rebuild the table from a targets-<timestamp>.json")
    arguments = parser.parse_args()
    if arguments.render:
        print(render(arguments.render))
        return
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    figures = {
        "timestamp": timestamp,
        "machine": {"cores": os.cpu_count(), "memory_gib": round(memory_gib, 1), "python": sys.version.split()[0]},
        "command": " ".join(["python bench/run_all.py", *sys.argv[1:]]),
        "sources": {},
        "parts": {},
    }
    for used in arguments.use:
        part, _, file = used.partition("=")
        if part not in PARTS or not Path(file).is_file():
            parser.error(f"--use {used!r}: expected PART=FILE with PART one of {', '.join(PARTS)} and an existing file")
        taken = json.loads(Path(file).read_text())
        # An earlier run_all.py table holds its parts; any other file is the part's own results.
        figures["parts"][part] = taken["parts"][part] if "parts" in taken else taken
        figures["sources"][part] = file
    RESULTS_DIR.mkdir(exist_ok=True)
    raw_path = RESULTS_DIR / f"targets-{timestamp}.json"
    for part in arguments.parts:
        if part in figures["sources"]:
            continue
        figures["parts"][part] = measure(part)
        # After every part: a run stopped halfway keeps what it measured.
        raw_path.write_text(json.dumps(figures, indent=1))
    raw_path.write_text(json.dumps(figures, indent=1))
    print(render(raw_path))
    print(f"written: {raw_path} and .md")


if __name__ == "__main__":
    main()
