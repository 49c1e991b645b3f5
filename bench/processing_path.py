"""The processing path of the assets without Argilla, at 10k, 100k and 1M records.

    python bench/processing_path.py --records 10000 100000 1000000
    python bench/processing_path.py --records --duplicate-corpus 100000 --compare-workers 100000

Each asset step runs in its own fresh interpreter, as Dagster's multiprocess executor runs it:
its inputs are unpickled from the previous steps' outputs (as the FilesystemIOManager does), it
calls the same logic functions and writes the same files as the asset (curation_assets/assets/*.py),
and its output is pickled for the next steps. Per step: the seconds of the asset's own work (the
pickling is reported apart, as io_seconds) and the process's peak memory (VmHWM), which is what
that step needs. In pipeline order:

  raw_dolly              load_source, validate_records, the quarantine file, defect counts
  quality_signals        compute_quality_signals (worker processes from 50k records: their peak is
                         reported apart), the signals file, flag counts. The file is written by
                         defs.jsonl.write_jsonl (the same bytes); the asset still calls DataFrame.to_json,
                         which at 100k records took 1.2 GiB more memory at its peak
  annotation_assignments plan_assignments (a first plan: nothing placed or answered yet)
  annotator_shards       not run: it pushes to Argilla
  collected_feedback     simulated (not timed, not in the memory verdict: the simulation needs the
                         records and the plan, the asset only Argilla's answers): 30% of each queue
                         answered with the simulated annotators' mix; then finished_answers written
                         as the asset does (timed)
  change_statistics      compute_statistics(feedback, signals), the plotly pages, the PNG, the tables, the report
  curated_dolly          curate_with_rule_fixes, dataset_card with the report, write_curated

Writes every measurement, with the machine and its load average, to
bench/results/processing-<timestamp>.json and prints one JSON line per size. `--duplicate-corpus N`
times the quality signals on N records of which thousands are copies of one record, beside the N
ordinary records; `--compare-workers N` times them on N records with one process and with the
default workers, alternated, and checks the results are identical.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
ANNOTATORS = ["ana", "bruno", "chen", "dora"]
ANSWERED_SHARE = 0.3
ACTION_WEIGHTS = {"submit_unchanged": 0.4, "submit_edited": 0.35, "discard": 0.15, "draft": 0.10}  # as SimulationPlan
EXACT_COPIES = 5_000  # of one record, in the duplicate corpus
NEAR_COPIES = 2_000  # of the same record, one word replaced in each
STEPS = (
    "raw_dolly",
    "quality_signals",
    "annotation_assignments",
    "collected_feedback",
    "change_statistics",
    "curated_dolly",
)
SIMULATED = "collected_feedback"


def simulated_feedback(valid: pd.DataFrame, plan: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """The frame `collected_feedback` would hold after simulated annotators answered a share of each queue."""
    from curation_assets.logic.vocabulary import FEEDBACK_COLUMNS
    from curation_assets.quickstart.simulation import SIMULATION_MARK

    randomness = np.random.default_rng(seed)
    frame = valid.merge(plan[["id", "annotator"]], on="id")
    actions = np.where(
        randomness.random(len(frame)) < ANSWERED_SHARE,
        randomness.choice(list(ACTION_WEIGHTS), size=len(frame), p=list(ACTION_WEIGHTS.values())),
        "pending",
    )
    status = pd.Series(actions).map(
        {
            "submit_unchanged": "submitted",
            "submit_edited": "submitted",
            "discard": "discarded",
            "draft": "draft",
            "pending": "pending",
        }
    )
    edited = actions == "submit_edited"
    answered = (actions == "submit_unchanged") | edited | (actions == "draft")
    new_response = frame["response"].where(~(edited | (actions == "draft")), frame["response"] + f" {SIMULATION_MARK}")
    now = pd.Timestamp.now(tz="UTC")
    feedback = pd.DataFrame(
        {
            "record_id": frame["id"],
            "shard": frame["annotator"],
            "annotator": frame["annotator"],
            "status": status.to_numpy(),
            "new_instruction": frame["instruction"].where(answered, None),
            "new_input": frame["context"].where(answered, None),
            "new_response": new_response.where(answered, None),
            "instruction": frame["instruction"],
            "context": frame["context"],
            "response": frame["response"],
            "category": frame["category"],
            "inserted_at": pd.Series(now, index=frame.index).where(status.to_numpy() != "pending"),
            "updated_at": pd.Series(now, index=frame.index).where(status.to_numpy() != "pending"),
        }
    )
    return feedback[FEEDBACK_COLUMNS]


def memory_mib(field: str = "VmHWM") -> int:
    """This process's peak resident memory since it started (VmRSS: what it holds now).

    VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork + exec, so a child of the parent
    that generated a million rows would report the parent's peak as its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class Step:
    """One asset step in this process: its inputs unpickled, its work timed by part, its output pickled."""

    def __init__(self, handoff: Path, output_dir: Path):
        self.handoff, self.output_dir = handoff, output_dir
        self.seconds: dict[str, float] = {}
        self.io_seconds = 0.0
        self.facts: dict = {}

    def load(self, name: str):
        started = time.perf_counter()
        with open(self.handoff / f"{name}.pickle", "rb") as file:
            value = pickle.load(file)
        self.io_seconds += time.perf_counter() - started
        return value

    def save(self, name: str, value) -> None:
        started = time.perf_counter()
        with open(self.handoff / f"{name}.pickle", "wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        self.io_seconds += time.perf_counter() - started

    def timed(self, part: str, work, *arguments):
        started = time.perf_counter()
        result = work(*arguments)
        self.seconds[part] = round(time.perf_counter() - started, 2)
        return result

    def folder(self, name: str) -> Path:
        path = self.output_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def raw_dolly(step: Step, source: Path) -> None:
    from curation_assets.defs.source_loading import load_source
    from curation_assets.logic.source import defect_counts, validate_records

    loaded = step.timed("load", lambda: load_source(str(source)))

    def validate(records):
        valid, quarantine = validate_records(records)
        quarantine.to_json(step.folder("quarantine") / "raw_dolly_quarantine.jsonl", orient="records", lines=True,
                           force_ascii=False, default_handler=str)  # fmt: skip
        defect_counts(quarantine), valid["category"].value_counts().to_dict()
        return valid, len(quarantine)

    valid, step.facts["quarantined"] = step.timed("validate", validate, loaded)
    step.facts.update(records=len(loaded), valid=len(valid))
    del loaded
    step.save("raw_dolly", valid)


def quality_signals(step: Step) -> None:
    from curation_assets.defs.jsonl import write_jsonl
    from curation_assets.logic.quality import compute_quality_signals, flag_counts

    valid = step.load("raw_dolly")
    signals = step.timed("compute", functools.partial(compute_quality_signals, language="en"), valid)
    del valid
    step.timed(
        "file", lambda: write_jsonl(signals, step.folder("quality") / "quality_signals.jsonl", force_ascii=False)
    )

    def metadata(signals):
        flagged = signals[signals["priority"] > 0].sort_values("priority", ascending=False, kind="stable")
        step.facts.update(flagged=len(flagged), flag_counts=flag_counts(signals), fixable=int(signals["fixable"].sum()),
                          duplicate_groups=int(signals.loc[signals["duplicate_group"] != "", "duplicate_group"].nunique()))  # fmt: skip

    step.timed("metadata", metadata, signals)
    step.save("quality_signals", signals)


def annotation_assignments(step: Step) -> None:
    from curation_assets.logic.assignment import plan_assignments

    valid = step.load("raw_dolly")
    plan = step.timed(
        "plan", lambda: plan_assignments(list(valid["id"]), ANNOTATORS, seed=42, previous={}, answered=set())
    )
    step.save("annotation_assignments", plan)


def collected_feedback(step: Step) -> None:
    from curation_assets.logic.departed import finished_answers

    feedback = simulated_feedback(step.load("raw_dolly"), step.load("annotation_assignments"))
    step.timed(
        "kept_answers",
        lambda: finished_answers(feedback).to_parquet(
            step.folder("feedback") / "finished_answers.parquet", index=False
        ),
    )
    step.save("collected_feedback", feedback)


def change_statistics(step: Step) -> None:
    from curation_assets.logic.statistics import compute_statistics, markdown_report, plotly_figures, summary_png

    feedback, signals = step.load("collected_feedback"), step.load("quality_signals")
    statistics = step.timed("compute", lambda: compute_statistics(feedback, signals))

    def charts_and_report():
        charts = step.folder("statistics")
        for name, figure in plotly_figures(statistics).items():
            figure.write_html(charts / f"{name}.html", include_plotlyjs="directory")
        png = summary_png(statistics)
        (charts / "summary.png").write_bytes(png)
        for name, table in statistics.tables().items():
            table.to_csv(charts / f"{name}.csv", index=False)
        markdown_report(statistics.tables(), png)
        statistics.flag_precision.to_markdown(index=False)

    step.timed("charts_and_report", charts_and_report)
    step.facts["submitted"] = int(statistics.status_counts.set_index("status")["count"].get("submitted", 0))
    step.save("change_statistics", statistics.tables())


def curated_dolly(step: Step) -> None:
    from curation_assets.defs.publishing import write_curated
    from curation_assets.logic.curation import curate_with_rule_fixes, dataset_card
    from curation_assets.logic.statistics import markdown_report

    feedback, signals, tables = (
        step.load("collected_feedback"),
        step.load("quality_signals"),
        step.load("change_statistics"),
    )
    curated = step.timed(
        "curate", lambda: curate_with_rule_fixes(feedback, signals, apply_rule_fixes=False)
    )  # the config's default

    def publish():
        card = dataset_card(
            curated,
            markdown_report(tables, png=None),
            project="bench",
            source="file:bench.parquet",
            license="cc-by-sa-3.0",
            attribution="",
        )
        write_curated(curated, card, step.folder("curated_dolly"))
        curated["provenance"].value_counts().to_dict()

    step.timed("write", publish)
    step.facts["curated"] = len(curated)


class WorkerPeaks(threading.Thread):
    """The highest VmHWM of this process's children while they live (the quality signals' workers).

    Not ru_maxrss of the children: it survives fork + exec, so each worker would report the memory this
    process held when it started the worker.
    """

    def __init__(self):
        super().__init__(daemon=True)
        self.peak_mib, self.stopped = 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            for children in Path("/proc/self/task").glob("*/children"):
                for pid in children.read_text().split():
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                    except OSError:
                        continue
                    kib = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
                    self.peak_mib = max(self.peak_mib, round(kib / 1024))


def run_step(name: str, handoff: Path, output_dir: Path, source: Path, profile: Path | None) -> dict:
    """One step in this (fresh) process: what a Dagster step process would do and hold."""
    step = Step(handoff, output_dir)
    workers = WorkerPeaks()
    workers.start()
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    work = {"raw_dolly": lambda: raw_dolly(step, source), "quality_signals": lambda: quality_signals(step),
            "annotation_assignments": lambda: annotation_assignments(step), "collected_feedback": lambda: collected_feedback(step),
            "change_statistics": lambda: change_statistics(step), "curated_dolly": lambda: curated_dolly(step)}  # fmt: skip
    work[name]()
    workers.stopped.set()
    if profiler:
        profiler.stop()
        profile.write_text(profiler.output_html())
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": step.seconds,
        "io_seconds": round(step.io_seconds, 2),
        # CPU seconds of the whole step process (imports and pickling included) and of its workers: on a busy
        # machine the wall clock stretches, these much less
        "cpu_seconds": round(own.ru_utime + own.ru_stime, 2),
        "worker_cpu_seconds": round(children.ru_utime + children.ru_stime, 2),
        "peak_rss_mib": memory_mib(),
        "worker_peak_rss_mib": workers.peak_mib,  # the largest of the quality signals' worker processes, each a process of its own
        "facts": step.facts,
    }


def in_fresh_interpreter(arguments: list[str]) -> dict:
    command = [sys.executable, str(Path(__file__)), "--child", *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_assets(records: int, work_dir: Path, profile: bool) -> dict:
    """Generate the file, then run each step in its own interpreter, in pipeline order."""
    from dolly_generator import write_source_file

    source = write_source_file(records, work_dir / f"dolly-{records}.parquet")
    handoff, output_dir = work_dir / f"handoff-{records}", work_dir / f"out-{records}"
    handoff.mkdir()
    load_before = os.getloadavg()
    steps = {}
    for name in STEPS:
        profile_to = [str(work_dir / f"profile-{records}-{name}.html")] if profile else []
        steps[name] = in_fresh_interpreter(["step", name, str(handoff), str(output_dir), str(source), *profile_to])
    source.unlink()
    timed = {name: figures for name, figures in steps.items() if name != SIMULATED}
    total = sum(sum(figures["seconds"].values()) for figures in steps.values())
    facts = {key: value for figures in steps.values() for key, value in figures["facts"].items()}
    return {
        "mode": "assets",
        "records": records,
        **facts,
        "steps": steps,
        "total_seconds": round(total, 2),
        "microseconds_per_record": round(1e6 * total / records, 1),
        "io_seconds": round(sum(figures["io_seconds"] for figures in steps.values()), 2),
        "peak_rss_mib": max(figures["peak_rss_mib"] for figures in timed.values()),
        "peak_step": max(timed, key=lambda name: timed[name]["peak_rss_mib"]),
        "worker_peak_rss_mib": steps["quality_signals"]["worker_peak_rss_mib"],
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
    }


def duplicate_corpus(frame: pd.DataFrame) -> pd.DataFrame:
    """The records with EXACT_COPIES of one (its response's case varied) and NEAR_COPIES with one word replaced.

    The copied record is of ordinary length and has no context (so the corpus holds about as much text
    as the ordinary records), with 40 words or more: a word replaced changes three shingles, and each
    near copy stays above the Jaccard threshold.
    """
    words = frame["instruction"].str.split().str.len() + frame["response"].str.split().str.len()
    chosen = ((words >= 40) & (words <= 60) & (frame["context"] == "")).to_numpy().argmax()
    corpus = pd.concat([frame.iloc[[chosen]], frame.drop(index=frame.index[chosen])], ignore_index=True)
    corpus["id"] = frame["id"].to_numpy()
    first = corpus.iloc[0]
    words = first["response"].split()
    fields = ["instruction", "context", "response", "category"]
    copies = np.arange(1, 1 + EXACT_COPIES)
    corpus.loc[copies, fields] = first[fields].to_numpy()
    corpus.loc[copies[::2], "response"] = first["response"].upper()
    near = np.arange(1 + EXACT_COPIES, 1 + EXACT_COPIES + NEAR_COPIES)
    corpus.loc[near, fields] = first[fields].to_numpy()
    corpus.loc[near, "response"] = [
        " ".join(words[: index % len(words)] + [f"replaced{index}"] + words[index % len(words) + 1 :])
        for index in range(len(near))
    ]
    return corpus


def run_duplicate_corpus(source: Path) -> dict:
    """Quality signals on ordinary records and on the same records with thousands of copies of one, side by side."""
    from curation_assets.logic.quality import compute_quality_signals

    frame = pd.read_parquet(source)
    corpus = duplicate_corpus(frame)
    timings, copies_grouped, group_size = {}, False, 0
    for name, records in (
        ("ordinary", frame),
        ("with_copies", corpus),
        ("ordinary_again", frame),
        ("with_copies_again", corpus),
    ):
        started = time.perf_counter()
        signals = compute_quality_signals(records)
        timings[name] = round(time.perf_counter() - started, 2)
        if name == "with_copies":
            group = signals["duplicate_group"].iloc[0]
            members = set(np.flatnonzero((signals["duplicate_group"] == group).to_numpy()).tolist())
            copies_grouped = bool(group) and set(range(1 + EXACT_COPIES + NEAR_COPIES)) <= members
            group_size = int(signals["duplicate_group_size"].iloc[0])
    return {"records": len(frame), "exact_copies": EXACT_COPIES, "near_copies": NEAR_COPIES, "seconds": timings,
            "copies_in_one_group": copies_grouped, "group_size": group_size}  # fmt: skip


def run_compare_workers(source: Path) -> dict:
    """Quality signals with one process and with the default worker processes, alternated, and the same result."""
    from curation_assets.logic.quality import _worker_count, compute_quality_signals

    frame = pd.read_parquet(source)
    timings: dict[str, list[float]] = {"one_process": [], "default_workers": []}
    results = {}
    for name, workers in (("one_process", 1), ("default_workers", None), ("default_workers", None), ("one_process", 1)):
        started = time.perf_counter()
        results[name] = compute_quality_signals(frame, workers=workers)
        timings[name].append(round(time.perf_counter() - started, 2))
    return {"records": len(frame), "default_workers": _worker_count(None, len(frame)), "seconds": timings,
            "identical": bool(results["one_process"].equals(results["default_workers"]))}  # fmt: skip


def measure_signals(mode: str, records: int, work_dir: Path) -> dict:
    from dolly_generator import write_source_file

    source = write_source_file(records, work_dir / f"dolly-{records}.parquet")
    load_before = os.getloadavg()
    result = in_fresh_interpreter([mode, str(source)])
    source.unlink()
    return {"mode": mode, **result, "load_average_before": [round(value, 2) for value in load_before],
            "load_average_after": [round(value, 2) for value in os.getloadavg()]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--duplicate-corpus", type=int, metavar="N", help="time the signals on N records with thousands of copies"
    )
    parser.add_argument(
        "--compare-workers", type=int, metavar="N", help="time the signals on N records, one process vs workers"
    )
    parser.add_argument("--profile", action="store_true", help="write a pyinstrument HTML profile per size and step")
    parser.add_argument(
        "--out", type=Path, help="the results file (default: bench/results/processing-<timestamp>.json)"
    )
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        mode, *rest = arguments.child
        if mode == "step":
            name, handoff, output_dir, source, *profile = rest
            result = run_step(
                name, Path(handoff), Path(output_dir), Path(source), Path(profile[0]) if profile else None
            )
        else:
            result = {"duplicate_corpus": run_duplicate_corpus, "compare_workers": run_compare_workers}[mode](
                Path(rest[0])
            )
        print(json.dumps(result))
        return
    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.out or RESULTS_DIR / f"processing-{timestamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    report = {
        "timestamp": timestamp,
        "command": " ".join(["python bench/processing_path.py", *sys.argv[1:]]),
        "machine": {"cores": os.cpu_count(), "memory_gib": round(memory_gib, 1), "python": sys.version.split()[0]},
        "runs": [],
    }
    planned = [("assets", records) for records in arguments.records]
    if arguments.duplicate_corpus:
        planned.append(("duplicate_corpus", arguments.duplicate_corpus))
    if arguments.compare_workers:
        planned.append(("compare_workers", arguments.compare_workers))
    with tempfile.TemporaryDirectory() as work_dir:
        for mode, records in planned:
            if mode == "assets":
                result = measure_assets(records, Path(work_dir), arguments.profile)
            else:
                result = measure_signals(mode, records, Path(work_dir))
            report["runs"].append(result)
            out.write_text(
                json.dumps(report, indent=1)
            )  # after every run, so a run stopped halfway keeps what it measured
            print(json.dumps(result), flush=True)
    print(f"written: {out}")


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    main()
