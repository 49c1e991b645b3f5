"""The processing path: every asset and check of a run that does not push to Argilla, at 10k, 100k and 1M records.

    python bench/processing_path.py                                   # 10,000, 100,000 and 1,000,000 records
    python bench/processing_path.py --records 100000 --profile        # pyinstrument HTML per step, in bench/results/scratch/
    python bench/processing_path.py --records --duplicate-corpus 100000 --compare-workers 100000

Each step runs in its own fresh interpreter, as Dagster's multiprocess executor runs it: its inputs
are unpickled from the earlier steps' outputs (as the FilesystemIOManager does), the asset or check
itself is invoked (the definitions `build_project_definitions` makes, called directly), and its
output is pickled for the next steps. A step's seconds are the asset's own work; the pickling is
reported apart (`io_seconds`), and so are the CPU seconds of the step process and of the quality
signals' worker processes. A step's peak memory (VmHWM) is what that step needs.

The project: the generated records as a parquet source, four annotators, 10% of the records dealt to
two of them (so agreement and the review queue have input), two reviewers, the defaults otherwise.
In pipeline order:

  raw_dolly                         the asset
  quality_signals                   the asset (worker processes from 50,000 records: their peak is reported apart)
  annotation_assignments            the asset; Argilla answers as before the first push (the team's accounts, no
                                    dataset yet)
  every_record_assigned_as_planned  the check
  annotator_shards                  not run: it pushes (bench/argilla_logging.py measures building and pushing what
                                    it pushes, bench/pipeline_vs_baseline.py the asset against a real server)
  collected_feedback                the asset, reading what Argilla would answer after simulated annotators answered
                                    30% of each queue with the simulated annotators' mix (timestamps at a human pace,
                                    with breaks); the time spent making those answers is left out
  argilla_matches_plan              the check
  change_statistics                 the asset
  annotator_agreement               the asset
  annotator_pace                    the asset
  review_queue                      the asset; Argilla holds the team's accounts and no review dataset yet
  review_shards                     not run: it pushes
  collected_reviews                 the asset, reading simulated verdicts on half of the review queue (their making
                                    left out)
  curated_dolly                     the asset (files only, no Hub)

Writes every measurement, with the machine and its load average, to
bench/results/processing-<timestamp>.json (--out to choose), prints one JSON line per size, and at the
end renders that file (as `--render RESULTS.json` does): RESULTS.md, the tables bench/README.md shows,
and RESULTS.png, time and peak memory against records and the time per record of each step.
`--duplicate-corpus N` times the quality signals on N records of which thousands are copies of one
record, beside the N ordinary records; `--compare-workers N` times them on N records with one process
and with the default workers, alternated, and checks the results are identical.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
SCRATCH_DIR = RESULTS_DIR / "scratch"
ANNOTATORS = ["ana", "bruno", "chen", "dora"]
REVIEWERS = ["rita", "sam"]
OVERLAP_SHARE = 0.1
ANSWERED_SHARE = 0.3
ACTION_WEIGHTS = {"submit_unchanged": 0.4, "submit_edited": 0.35, "discard": 0.15, "draft": 0.10}  # as SimulationPlan
SECONDS_PER_ANSWER = 75.0  # median; log-normal spread, and a break of 15 to 90 minutes after 2% of the answers
REVIEWED_SHARE = 0.5
EXACT_COPIES = 5_000  # of one record, in the duplicate corpus
NEAR_COPIES = 2_000  # of the same record, one word replaced in each
# Each step, and the functions inside it timed apart (their module, and the names the step's code calls).
STEPS = {
    "raw_dolly": ("curation_assets.defs.assets.source", ["load_source", "validate_records"]),
    "quality_signals": ("curation_assets.defs.assets.quality", ["compute_quality_signals", "write_jsonl"]),
    "annotation_assignments": ("curation_assets.defs.assets.assignments", ["plan_team_assignments"]),
    "every_record_assigned_as_planned": None,
    "collected_feedback": ("curation_assets.argilla_adapter.mapping", ["feedback_rows", "feedback_frame"]),
    "argilla_matches_plan": None,
    "change_statistics": ("curation_assets.defs.assets.statistics", ["compute_statistics", "plotly_figures", "summary_png"]),
    "annotator_agreement": ("curation_assets.defs.assets.agreement", ["compute_agreement"]),
    "annotator_pace": ("curation_assets.defs.assets.pace", ["compute_pace"]),
    "review_queue": ("curation_assets.defs.assets.review", ["find_disagreements", "assign_reviewers"]),
    "collected_reviews": ("curation_assets.defs.assets.review", ["review_rows", "review_frame"]),
    "curated_dolly": ("curation_assets.defs.assets.curated", ["curate_with_rule_fixes", "dataset_card", "write_curated"]),
}  # fmt: skip


def bench_project(source: Path, output_dir: Path):
    from curation_assets.defs.project import Project

    return Project.in_code(
        "bench",
        source={"file": str(source)},
        output_dir=str(output_dir),
        annotation={"annotators": ANNOTATORS, "overlap": {"share": OVERLAP_SHARE, "annotators_per_record": 2}},
        review={"reviewers": REVIEWERS},
        publish={"license": "cc-by-sa-3.0"},
    )


# -- what Argilla would answer -------------------------------------------------------------------------------


class SimulatedArgilla:
    """Stands in for the HTTP exchange with Argilla: the team's accounts, and the records of the datasets a step reads.

    A dataset's records come a page at a time, as the client reads them (`ArgillaClient.iter_records`): each
    page is made when the step asks for it, and the seconds that takes are counted
    (`making_seconds`) so the step's time leaves them out; a real read would spend that time waiting
    for the server and parsing its JSON instead. They are counted as the CPU time of the thread that
    makes them: `collected_feedback` reads two datasets at once, and the wall time of two overlapping
    makings (which share one interpreter lock with the asset's own work) summed to more than the
    making took, so the step's time came out too short.
    """

    api_url = "http://argilla.invalid"

    def __init__(self, pages_by_dataset: dict[str, callable] | None = None, dataset_name: str = ""):
        self.pages_by_dataset = pages_by_dataset or {}
        self.dataset_name = dataset_name
        self.making_seconds = 0.0

    @property
    def client(self):  # what `argilla_client()` takes from the resource
        return self

    def annotator_usernames(self) -> list[str]:
        return sorted(ANNOTATORS + REVIEWERS)

    def user_ids_by_name(self) -> dict[str, str]:
        return {name: f"user-{name}" for name in ANNOTATORS + REVIEWERS}

    def datasets_named(self, dataset_name: str) -> dict:
        if dataset_name != self.dataset_name:
            return {}
        return {name: SimpleNamespace(id=name, metadata={}) for name in self.pages_by_dataset}

    def changes_since_now(self) -> str:  # the embedded server announces record updates: the asset keeps its cache
        return "2026-11-30T12:00:00"

    def iter_records(self, dataset_id: str) -> Iterator[dict]:
        pages = self.pages_by_dataset[dataset_id]()
        while True:
            started = time.thread_time()
            page = next(pages, None)
            self.making_seconds += time.thread_time() - started
            if page is None:
                return
            yield from page


def _iso(times: pd.Series) -> list:
    return [None if pd.isna(value) else value.strftime("%Y-%m-%dT%H:%M:%S.%f") for value in times]


def simulated_answers(valid: pd.DataFrame, plan: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Per planned (record, annotator): the action of a simulated annotator and when they took it.

    `ANSWERED_SHARE` of each queue answered with the mix of `SimulationPlan`; each annotator answers
    at a human pace (a log-normal gap with a median of SECONDS_PER_ANSWER, and a break after 2%).
    """
    from curation_assets.quickstart.simulation import SIMULATION_MARK

    randomness = np.random.default_rng(seed)
    frame = plan[["id", "annotator"]].merge(valid, on="id", sort=False)
    actions = np.where(
        randomness.random(len(frame)) < ANSWERED_SHARE,
        randomness.choice(list(ACTION_WEIGHTS), size=len(frame), p=list(ACTION_WEIGHTS.values())),
        "pending",
    )
    frame["status"] = pd.Series(actions).map(
        {"submit_unchanged": "submitted", "submit_edited": "submitted", "discard": "discarded", "draft": "draft",
         "pending": "pending"}
    ).to_numpy()  # fmt: skip
    edited = (actions == "submit_edited") | (actions == "draft")
    frame["new_response"] = frame["response"].where(~edited, frame["response"] + f" {SIMULATION_MARK}")
    gaps = randomness.lognormal(np.log(SECONDS_PER_ANSWER), 0.5, len(frame))
    gaps += np.where(randomness.random(len(frame)) < 0.02, randomness.uniform(900, 5400, len(frame)), 0.0)
    answered = (frame["status"] != "pending").to_numpy()
    elapsed = pd.Series(gaps[answered]).groupby(frame["annotator"].to_numpy()[answered]).cumsum().to_numpy()
    frame["updated_at"] = pd.NaT
    frame.loc[answered, "updated_at"] = pd.Timestamp("2026-11-30T08:00:00") + pd.to_timedelta(elapsed, unit="s")
    return frame


def feedback_pages(answers_file: Path, annotator: str) -> Iterator[list[dict]]:
    """The records of an annotator's dataset, a page at a time, read from the simulated server's file as they are
    asked for: the step holds one page of them, as it does reading the real server."""
    from curation_assets.argilla_adapter.rest import RECORD_PAGE_SIZE

    for batch in pq.ParquetFile(answers_file).iter_batches(batch_size=RECORD_PAGE_SIZE):
        yield feedback_records(batch.to_pandas(), annotator)


def feedback_records(answers: pd.DataFrame, annotator: str) -> list[dict]:
    """The raw records of an annotator's dataset as the server lists them (responses included)."""
    mine = answers[answers["annotator"] == annotator]
    records = []
    for record_id, instruction, context, response, category, status, new_response, when in zip(
        mine["id"], mine["instruction"], mine["context"], mine["response"], mine["category"], mine["status"],
        mine["new_response"], _iso(mine["updated_at"]),
    ):  # fmt: skip
        fields = {"instruction": instruction, "context": context, "response": response, "category": category}
        responses = []
        if status != "pending":
            values = {"new-instruction": {"value": instruction}, "new-response": {"value": new_response}}
            if context:
                values["new-input"] = {"value": context}
            responses = [{"user_id": f"user-{annotator}", "status": status,
                          "values": {} if status == "discarded" else values, "inserted_at": when, "updated_at": when}]  # fmt: skip
        records.append({"external_id": record_id, "fields": fields, "responses": responses})
    return records


def review_records(queue: pd.DataFrame, reviewer: str, seed: int = 11) -> list[dict]:
    """The raw records of a reviewer's dataset after they answered REVIEWED_SHARE of it: accept the prefilled version
    (nine in ten) or discard."""
    randomness = np.random.default_rng([seed, REVIEWERS.index(reviewer)])
    records = []
    for record_id, prefill in zip(queue["record_id"], queue["prefill"]):
        responses = []
        if randomness.random() < REVIEWED_SHARE:
            verdict = "accept" if randomness.random() < 0.9 and prefill else "discard"
            values = {"verdict": {"value": verdict}}
            if verdict == "accept":
                values.update({question: {"value": prefill.get(column, "")} for question, column in
                               (("new-instruction", "new_instruction"), ("new-input", "new_input"), ("new-response", "new_response"))})  # fmt: skip
            responses = [{"user_id": f"user-{reviewer}", "status": "submitted", "values": values,
                          "inserted_at": "2026-12-01T09:00:00.000000", "updated_at": "2026-12-01T09:00:00.000000"}]  # fmt: skip
        records.append({"external_id": record_id, "responses": responses})
    return records


# -- one step in this process -----------------------------------------------------------------------------------


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
    """One step in this process: its inputs unpickled, the asset invoked and timed, its output pickled."""

    def __init__(self, name: str, handoff: Path, project):
        self.name, self.handoff, self.project = name, handoff, project
        self.seconds: dict[str, float] = {}
        self.io_seconds = 0.0
        self.facts: dict = {}

    def load(self, name: str):
        started = time.perf_counter()
        with open(self.handoff / f"{name}.pickle", "rb") as file:
            value = pickle.load(file)
        self.io_seconds += time.perf_counter() - started
        return value

    def save(self, value) -> None:
        started = time.perf_counter()
        with open(self.handoff / f"{self.name}.pickle", "wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        self.io_seconds += time.perf_counter() - started

    @contextlib.contextmanager
    def parts_timed(self) -> Iterator[None]:
        """The functions STEPS names for this step, timed where the asset's module calls them."""
        import importlib

        module_name, names = STEPS[self.name] or (None, [])
        module = importlib.import_module(module_name) if module_name else None
        originals = {name: getattr(module, name) for name in names}

        def timing(name, function):
            def timed(*arguments, **keywords):
                started = time.perf_counter()
                try:
                    return function(*arguments, **keywords)
                finally:
                    self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

            return timed

        for name, function in originals.items():
            setattr(module, name, timing(name, function))
        try:
            yield
        finally:
            for name, function in originals.items():
                setattr(module, name, function)

    def invoke(self, definition, argilla: SimulatedArgilla | None = None, context: bool = False, **inputs):
        """The asset or check called as Dagster would call it, its output value returned; `total` is its whole time."""
        import dagster as dg

        resources = {self.project.argilla_resource_key: argilla} if argilla else None
        with contextlib.ExitStack() as stack:
            instance = stack.enter_context(dg.DagsterInstance.ephemeral())
            arguments = [dg.build_asset_context(resources=resources, instance=instance)] if context or argilla else []
            with self.parts_timed():
                started = time.perf_counter()
                result = definition(*arguments, **inputs)
                events = list(result) if not isinstance(result, dg.Output | dg.AssetCheckResult) else [result]
                total = time.perf_counter() - started
        making = argilla.making_seconds if argilla else 0.0
        self.seconds = {"total": total - making, **self.seconds}
        if making:
            self.facts["simulated_argilla_seconds"] = round(making, 2)
        self.seconds = {name: round(value, 2) for name, value in self.seconds.items()}
        outputs = [event for event in events if isinstance(event, dg.Output)]
        checks = [event for event in events if isinstance(event, dg.AssetCheckResult)]
        for check in checks:
            self.facts[f"check {check.check_name or self.name} passed"] = check.passed
        if not outputs:
            return checks[0]
        for key, value in outputs[0].metadata.items():  # the counts the asset reports
            if isinstance(value.value, int | float) and not isinstance(value.value, bool):
                self.facts[f"{self.name}: {key}"] = value.value
        return outputs[0].value


def step_definition(project, name: str):
    """The asset or check of that name, as `build_project_definitions` makes it."""
    from curation_assets.defs.build import ASSET_BUILDERS
    from curation_assets.defs.checks import build_checks

    for builder in ASSET_BUILDERS:
        if builder.__name__ == f"build_{name}":
            return builder(project)
    return next(check for check in build_checks(project) if next(iter(check.check_specs)).name == name)


def step_argilla(step: Step) -> SimulatedArgilla | None:
    """What the step reads from Argilla, for the steps that read it."""
    project = step.project
    if step.name in ("annotation_assignments", "review_queue"):
        return SimulatedArgilla()  # the team's accounts; no annotator or review dataset yet
    if step.name == "collected_feedback":
        # Each annotator's answers wait in a file the simulated server wrote in its own process (`serve_answers`), as
        # a server keeps them: not in the step's memory (a frame of every answer with its texts, and the merge of the
        # records with the plan that makes it: most of the step's peak at 1,000,000 records when made here), which
        # holds the page it reads.
        return SimulatedArgilla(
            {annotator: lambda annotator=annotator: feedback_pages(server_file(step.handoff, annotator), annotator)
             for annotator in ANNOTATORS},
            project.dataset_name,
        )  # fmt: skip
    if step.name == "collected_reviews":
        queue = step.load("review_queue")
        return SimulatedArgilla(
            {reviewer: lambda reviewer=reviewer: iter([review_records(queue[queue["reviewer"] == reviewer], reviewer)])
             for reviewer in REVIEWERS},
            project.review_dataset_name,
        )  # fmt: skip
    return None


def server_file(handoff: Path, annotator: str) -> Path:
    return handoff / f"server-answers-{annotator}.parquet"


def serve_answers(handoff: Path) -> dict:
    """What the simulated annotators answered, one file per annotator's dataset, made in a process of its own before
    `collected_feedback` runs (the server's side: neither its time nor its memory is the step's)."""
    with open(handoff / "raw_dolly.pickle", "rb") as file:
        valid = pickle.load(file)
    with open(handoff / "annotation_assignments.pickle", "rb") as file:
        plan = pickle.load(file)
    answers = simulated_answers(valid, plan)
    for annotator in ANNOTATORS:
        answers[answers["annotator"] == annotator].to_parquet(server_file(handoff, annotator))
    return {}


def run_asset_step(step: Step) -> None:
    """The step: its inputs unpickled, the asset or check invoked with them, its output pickled."""
    definition = step_definition(step.project, step.name)
    # Inputs named after the asset they take; `deps` (an order, no value) are inputs named otherwise.
    inputs = {name: step.load(name) for name, key in definition.keys_by_input_name.items() if key.path[-1] == name}
    argilla = step_argilla(step)
    context = definition.op.compute_fn.has_context_arg()
    value = step.invoke(definition, argilla=argilla, context=context, **inputs)
    del inputs
    if step.name not in ("every_record_assigned_as_planned", "argilla_matches_plan"):
        step.save(value)


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
    step = Step(name, handoff, bench_project(source, output_dir))
    workers = WorkerPeaks()
    workers.start()
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler()
        profiler.start()
    run_asset_step(step)
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
        "worker_peak_rss_mib": workers.peak_mib,  # the largest of the quality signals' worker processes
        "facts": step.facts,
    }


def in_fresh_interpreter(arguments: list[str]) -> dict:
    command = [sys.executable, str(Path(__file__)), "--child", *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_assets(records: int, work_dir: Path, profile_dir: Path | None) -> dict:
    """Generate the file, then run each step in its own interpreter, in pipeline order."""
    from dolly_generator import write_source_file

    source = write_source_file(records, work_dir / f"dolly-{records}.parquet")
    handoff, output_dir = work_dir / f"handoff-{records}", work_dir / f"out-{records}"
    handoff.mkdir()
    load_before = os.getloadavg()
    steps = {}
    for name in STEPS:
        if name == "collected_feedback":
            in_fresh_interpreter(["serve", str(handoff)])
        profile_to = [str(profile_dir / f"profile-{records}-{name}.html")] if profile_dir else []
        steps[name] = in_fresh_interpreter(["step", name, str(handoff), str(output_dir), str(source), *profile_to])
    source.unlink()
    total = sum(figures["seconds"]["total"] for figures in steps.values())
    facts = {key: value for figures in steps.values() for key, value in figures.pop("facts").items()}
    return {
        "mode": "assets",
        "records": records,
        "facts": facts,
        "steps": steps,
        "total_seconds": round(total, 2),
        "microseconds_per_record": round(1e6 * total / records, 1),
        "cpu_seconds": round(
            sum(figures["cpu_seconds"] + figures["worker_cpu_seconds"] for figures in steps.values()), 2
        ),
        "io_seconds": round(sum(figures["io_seconds"] for figures in steps.values()), 2),
        "peak_rss_mib": max(figures["peak_rss_mib"] for figures in steps.values()),
        "peak_step": max(steps, key=lambda name: steps[name]["peak_rss_mib"]),
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


# -- the tables and the plot of bench/README.md, from a results file --------------------------------------------

GOAL_SECONDS, GOAL_MIB = 120, 4096  # at 1M records


def _mib(value: int) -> str:
    return f"{value:,} MiB"


def render_markdown(report: dict, results_name: str) -> str:
    """The tables bench/README.md shows: one row per size, then seconds and peak memory per step and size."""
    runs = [run for run in report["runs"] if run["mode"] == "assets"]
    lines = [
        f"`{report['command']}` → `{results_name}` ({report['machine']['cores']} cores, "
        f"{report['machine']['memory_gib']} GiB, Python {report['machine']['python']}, {report['timestamp']}).",
    ]
    lines += _size_tables(runs) if runs else []
    lines += _signal_comparisons(report)
    return "\n".join(lines) + "\n"


def _size_tables(runs: list[dict]) -> list[str]:
    smallest = runs[0]["total_seconds"] / runs[0]["records"]
    lines = [
        "",
        "| records | total (steps' own work) | per record | vs smallest | CPU (steps + workers) | pickling | peak (step) "
        "| quality workers: peak each | load average before → after (1 min) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for run in runs:
        per_record = run["total_seconds"] / run["records"]
        lines.append(
            f"| {run['records']:,} | **{run['total_seconds']:.1f} s** | {1e6 * per_record:,.0f} µs "
            f"| {per_record / smallest:.2f}x | {run['cpu_seconds']:.1f} s | {run['io_seconds']:.1f} s "
            f"| **{_mib(run['peak_rss_mib'])}** ({run['peak_step']}) "
            f"| {_mib(run['worker_peak_rss_mib']) if run['worker_peak_rss_mib'] else 'one process'} "
            f"| {run['load_average_before'][0]:.1f} → {run['load_average_after'][0]:.1f} |"
        )
    lines += [
        "",
        "Per step: wall seconds of the asset's own work (in brackets the functions timed inside it); CPU seconds of the "
        "step process (its interpreter's start, about 3 s, and the unpickling included) and of its worker processes; "
        "peak memory:",
        "",
        "| step | " + " | ".join(f"{run['records']:,}" for run in runs) + " |",
        "| --- | " + " | ".join("---" for _ in runs) + " |",
    ]
    for name in runs[0]["steps"]:
        cells = []
        for run in runs:
            step = run["steps"][name]
            parts = ", ".join(f"{part} {seconds:.1f}" for part, seconds in step["seconds"].items() if part != "total")
            cell = f"{step['seconds']['total']:.1f} s" + (f" ({parts})" if parts else "")
            cpu = f"CPU {step['cpu_seconds']:.1f}" + (
                f" + workers {step['worker_cpu_seconds']:.1f}" if step["worker_cpu_seconds"] >= 0.1 else ""
            )
            cells.append(f"{cell}; {cpu}; {_mib(step['peak_rss_mib'])}")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return lines


def _signal_comparisons(report: dict) -> list[str]:
    lines = []
    for run in report["runs"]:
        if run["mode"] == "duplicate_corpus":
            seconds = run["seconds"]
            lines += ["", f"`--duplicate-corpus {run['records']}`: {run['exact_copies']:,} exact and "
                      f"{run['near_copies']:,} near copies of one record; one group of {run['group_size']:,}, every "
                      f"copy in it: {run['copies_in_one_group']}; the signals took {seconds['with_copies']} and "
                      f"{seconds['with_copies_again']} s against {seconds['ordinary']} and {seconds['ordinary_again']} s "
                      "for the ordinary records, alternated."]  # fmt: skip
        if run["mode"] == "compare_workers":
            seconds = run["seconds"]
            lines += ["", f"`--compare-workers {run['records']}`: one process {seconds['one_process']} s, "
                      f"{run['default_workers']} workers {seconds['default_workers']} s, alternated; identical results: "
                      f"{run['identical']}."]  # fmt: skip
    return lines


def render_plot(report: dict, path: Path) -> None:
    """Time and peak memory against records (log-log, with the linear extrapolation and the 1M goals), and the time
    per record of each step at each size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [run for run in report["runs"] if run["mode"] == "assets"]
    sizes = [run["records"] for run in runs]
    figure, (time_axis, memory_axis, steps_axis) = plt.subplots(1, 3, figsize=(17, 4.5), dpi=90)
    reach = [*sizes, 1_000_000] if sizes[-1] < 1_000_000 else sizes
    largest = runs[-1]["total_seconds"] / sizes[-1]
    time_axis.loglog(sizes, [run["total_seconds"] for run in runs], "o-", label="measured")
    time_axis.loglog(
        reach, [largest * size for size in reach], "--", color="grey", label="linear from the largest size"
    )
    time_axis.plot([1_000_000], [GOAL_SECONDS], "r*", markersize=12, label=f"goal at 1M: {GOAL_SECONDS} s")
    time_axis.set(title="Processing path (steps' own work)", xlabel="records", ylabel="seconds")
    time_axis.legend()
    memory_axis.loglog(sizes, [run["peak_rss_mib"] for run in runs], "o-", color="#dd8452", label="peak of any step")
    memory_axis.axhline(GOAL_MIB, color="red", linestyle=":", label="goal: 4 GiB")
    memory_axis.set_xlim(time_axis.get_xlim())
    memory_axis.set(title="Peak memory (VmHWM)", xlabel="records", ylabel="MiB")
    memory_axis.legend()
    bottom = np.zeros(len(runs))
    colours = plt.get_cmap("tab20").colors
    for index, name in enumerate(runs[0]["steps"]):
        per_record = np.array([1e6 * run["steps"][name]["seconds"]["total"] / run["records"] for run in runs])
        if per_record.max() >= 10:  # the steps that matter; the rest are summed below
            steps_axis.bar(range(len(runs)), per_record, bottom=bottom, label=name, color=colours[index])
            bottom += per_record
    rest = np.array([1e6 * run["total_seconds"] / run["records"] for run in runs]) - bottom
    steps_axis.bar(range(len(runs)), rest, bottom=bottom, label="the other steps", color="lightgrey")
    steps_axis.set_xticks(range(len(runs)), [f"{size:,}" for size in sizes])
    steps_axis.set(title="Time per record, by step", xlabel="records", ylabel="µs per record")
    steps_axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    loads = ", ".join(f"{run['load_average_before'][0]:.1f}" for run in runs)
    figure.suptitle(
        f"bench/processing_path.py, {report['timestamp']}: {report['machine']['cores']} cores, "
        f"{report['machine']['memory_gib']} GiB, 1-min load average before each size {loads}"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def render(results: Path) -> None:
    """RESULTS.md (the tables) and RESULTS.png (the plot) beside a results file."""
    report = json.loads(results.read_text())
    table = render_markdown(report, os.path.relpath(results.resolve(), BENCH_DIR.parent))
    results.with_suffix(".md").write_text(table)
    print(table)
    if any(run["mode"] == "assets" for run in report["runs"]):
        render_plot(report, results.with_suffix(".png"))
        print(f"written: {results.with_suffix('.md')}, {results.with_suffix('.png')}")
    else:
        print(f"written: {results.with_suffix('.md')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--duplicate-corpus", type=int, metavar="N", help="time the signals on N records with thousands of copies"
    )
    parser.add_argument(
        "--compare-workers", type=int, metavar="N", help="time the signals on N records, one process vs workers"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="write a pyinstrument HTML profile per size and step to bench/results/scratch/",
    )
    parser.add_argument(
        "--out", type=Path, help="the results file (default: bench/results/processing-<timestamp>.json)"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS",
        help="only write RESULTS.md (tables) and RESULTS.png (plot) from a file",
    )
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.render:
        render(arguments.render)
        return
    if arguments.child:
        mode, *rest = arguments.child
        if mode == "step":
            name, handoff, output_dir, source, *profile = rest
            result = run_step(
                name, Path(handoff), Path(output_dir), Path(source), Path(profile[0]) if profile else None
            )
        else:
            result = {
                "duplicate_corpus": run_duplicate_corpus,
                "compare_workers": run_compare_workers,
                "serve": serve_answers,
            }[mode](Path(rest[0]))
        print(json.dumps(result, default=str))
        return
    timestamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.out or RESULTS_DIR / f"processing-{timestamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    profile_dir = None
    if arguments.profile:
        profile_dir = SCRATCH_DIR / f"processing-{timestamp}-profiles"
        profile_dir.mkdir(parents=True, exist_ok=True)
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    report = {
        "timestamp": timestamp,
        "command": " ".join(["python bench/processing_path.py", *sys.argv[1:]]),
        "machine": {"cores": os.cpu_count(), "memory_gib": round(memory_gib, 1), "python": sys.version.split()[0]},
        "project": {"annotators": ANNOTATORS, "reviewers": REVIEWERS, "overlap_share": OVERLAP_SHARE,
                    "answered_share": ANSWERED_SHARE, "reviewed_share": REVIEWED_SHARE},
        "runs": [],
    }  # fmt: skip
    planned = [("assets", records) for records in arguments.records]
    if arguments.duplicate_corpus:
        planned.append(("duplicate_corpus", arguments.duplicate_corpus))
    if arguments.compare_workers:
        planned.append(("compare_workers", arguments.compare_workers))
    with tempfile.TemporaryDirectory() as work_dir:
        for mode, records in planned:
            if mode == "assets":
                result = measure_assets(records, Path(work_dir), profile_dir)
            else:
                result = measure_signals(mode, records, Path(work_dir))
            report["runs"].append(result)
            # After every run, so a run stopped halfway keeps what it measured.
            out.write_text(json.dumps(report, indent=1))
            print(json.dumps(result), flush=True)
    render(out)
    print(f"written: {out}" + (f"; profiles in {profile_dir}" if profile_dir else ""))


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR))
    main()
