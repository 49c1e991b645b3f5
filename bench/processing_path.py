"""The processing path without Argilla: load a local file, validate, assign, statistics, curate.

    python bench/processing_path.py --records 10000 100000 1000000

Each size runs in a fresh subprocess so its peak memory (VmHWM) is its own. The
feedback frame stands in for Argilla: 30% of the records answered with the simulated
annotators' mix (submit unchanged / submit edited / discard / draft), built with the same
pure functions the pipeline uses. Prints one JSON line per size with the seconds of each
stage and the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
ANNOTATORS = ["ana", "bruno", "chen", "dora"]
ANSWERED_SHARE = 0.3
ACTION_WEIGHTS = {"submit_unchanged": 0.4, "submit_edited": 0.35, "discard": 0.15, "draft": 0.10}  # as SimulationPlan


def simulated_feedback(valid: pd.DataFrame, plan: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """The frame `collected_feedback` would hold after simulated annotators answered a share of each queue."""
    from curation_assets.argilla_mapping import FEEDBACK_COLUMNS
    from curation_assets.quickstart.simulation import SIMULATION_MARK

    randomness = np.random.default_rng(seed)
    frame = valid.merge(plan[["id", "annotator"]], on="id")
    actions = np.where(
        randomness.random(len(frame)) < ANSWERED_SHARE,
        randomness.choice(list(ACTION_WEIGHTS), size=len(frame), p=list(ACTION_WEIGHTS.values())),
        "pending",
    )
    status = pd.Series(actions).map(
        {"submit_unchanged": "submitted", "submit_edited": "submitted", "discard": "discarded", "draft": "draft", "pending": "pending"}
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


def peak_rss_mib() -> int:
    """This process's peak resident memory since it started.

    VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork + exec, so a child of the parent
    that generated a million rows would report the parent's peak as its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def run_once(source: Path, output_dir: Path, profile: Path | None) -> dict:
    """Time each stage in this process; returns seconds per stage and the peak memory."""
    from curation_assets.logic.assignment import plan_assignments
    from curation_assets.logic.curation import curate, write_curated
    from curation_assets.logic.source import validate_records
    from curation_assets.defs.source_loading import load_source
    from curation_assets.logic.statistics import compute_statistics

    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    seconds, peak_after = {}, {}

    def stage(name, work):
        started = time.perf_counter()
        result = work()
        seconds[name] = round(time.perf_counter() - started, 2)
        peak_after[name] = peak_rss_mib()
        return result

    # Each stage keeps only what the next needs, as the pipeline's assets do (each is its own step,
    # its inputs loaded from the IO manager and released when the step ends).
    loaded = stage("load", lambda: load_source(str(source)))
    records = len(loaded)
    valid, quarantine = stage("validate", lambda: validate_records(loaded))
    del loaded
    plan = stage("assign", lambda: plan_assignments(list(valid["id"]), ANNOTATORS))
    feedback = stage("simulate_answers", lambda: simulated_feedback(valid, plan))
    valid_count, quarantined_count = len(valid), len(quarantine)
    del valid, plan, quarantine
    statistics = stage("statistics", lambda: compute_statistics(feedback))
    submitted = int(statistics.status_counts.set_index("status")["count"]["submitted"])
    del statistics
    curated = stage("curate", lambda: curate(feedback))
    del feedback
    stage("write_curated", lambda: write_curated(curated, "card", output_dir))
    if profiler:
        profiler.stop()
        profile.write_text(profiler.output_html())
    total = sum(value for name, value in seconds.items() if name != "simulate_answers")
    return {
        "records": records,
        "valid": valid_count,
        "quarantined": quarantined_count,
        "curated": len(curated),
        "submitted": submitted,
        "seconds": seconds,
        "peak_rss_mib_after": peak_after,  # where the peak grows: the profile of the memory figure
        "total_seconds": round(total, 2),
        "peak_rss_mib": peak_rss_mib(),
    }


def measure(records: int, work_dir: Path, profile: bool = False) -> dict:
    """Generate the file, then run the path in a fresh interpreter (so the peak memory is the path's alone)."""
    from dolly_generator import write_source_file

    source = write_source_file(records, work_dir / f"dolly-{records}.parquet")
    command = [sys.executable, str(Path(__file__)), "--child", str(source), str(work_dir / f"out-{records}")]
    if profile:
        command += ["--profile-to", str(work_dir / f"processing-{records}.html")]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"processing path at {records} records failed:\n{completed.stderr[-3000:]}")
    source.unlink()
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--profile", action="store_true", help="write a pyinstrument HTML profile per size")
    parser.add_argument("--child", nargs=2, type=Path, metavar=("SOURCE", "OUTPUT_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        print(json.dumps(run_once(*arguments.child, arguments.profile_to)))
        return
    with tempfile.TemporaryDirectory() as work_dir:
        for records in arguments.records:
            print(json.dumps(measure(records, Path(work_dir), arguments.profile)), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    main()
