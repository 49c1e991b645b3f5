"""The baseline: the Dolly curation tutorial's procedure, ported plainly to the argilla 2.x client.

What a user porting the notebook would write: read the source with pandas, shuffle and cut it
into one share per annotator, then for each annotator in turn create a workspace, add the
user, create the dataset and log the share with the client's defaults; later read every
dataset back with responses in a loop, build a pandas frame, draw the histograms and save the
curated dataset. The post-processing calls the project's pure functions, so both sides do the
same pandas work and the comparison measures the Argilla round trips.

Two deliberate departures from the notebook, both to keep it correct rather than slower:
the tutorial's inverted `if record.responses: continue` is not copied, and discarded
responses are read from a status query, because `records(with_responses=True)` crashes on a
discard without values (see /work/shared/notes: argilla client facts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import argilla as rg
import numpy as np
import pandas as pd

from curation_assets.argilla_mapping import FEEDBACK_COLUMNS, feedback_frame
from curation_assets.defs.publishing import write_curated
from curation_assets.logic.curation import curate
from curation_assets.logic.statistics import compute_statistics, plotly_figures

BASELINE_DATASET = "dolly-tutorial"
BASELINE_WORKSPACE_PREFIX = "tutorial-"


@dataclass
class BaselineTimings:
    push_seconds: float = 0.0
    collect_seconds: float = 0.0
    details: dict = field(default_factory=dict)


def tutorial_settings() -> rg.Settings:
    return rg.Settings(
        fields=[
            rg.TextField(name="category"),
            rg.TextField(name="instruction"),
            rg.TextField(name="context", required=False),
            rg.TextField(name="response"),
        ],
        questions=[
            rg.TextQuestion(name="new-instruction", required=True),
            rg.TextQuestion(name="new-input", required=False),
            rg.TextQuestion(name="new-response", required=True),
        ],
    )


def push(api_url: str, api_key: str, source: Path, annotators: list[str], timings: BaselineTimings) -> None:
    """Load, shuffle, split and log one share per annotator, in turn, with the client's defaults."""
    started = time.perf_counter()
    client = rg.Argilla(api_url=api_url, api_key=api_key)
    dolly = pd.read_parquet(source)
    shuffled = dolly.sample(frac=1, random_state=42)
    bounds = np.linspace(0, len(shuffled), len(annotators) + 1).astype(int)
    shares = [shuffled.iloc[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
    for annotator, share in zip(annotators, shares):
        workspace = rg.Workspace(name=f"{BASELINE_WORKSPACE_PREFIX}{annotator}", client=client).create()
        workspace.add_user(client.users(username=annotator))
        dataset = rg.Dataset(name=BASELINE_DATASET, workspace=workspace, settings=tutorial_settings(), client=client).create()
        records = [
            rg.Record(
                id=row["id"],
                fields={"category": row["category"], "instruction": row["instruction"], "context": row["context"], "response": row["response"]},
                suggestions=[
                    rg.Suggestion(question, row[column])
                    for question, column in (("new-instruction", "instruction"), ("new-input", "context"), ("new-response", "response"))
                    if row[column]
                ],
            )
            for row in share.to_dict("records")
        ]
        dataset.records.log(records)
    timings.push_seconds = time.perf_counter() - started


def originals_of(record: rg.Record, annotator: str) -> dict:
    return {
        "record_id": record.id,
        "shard": annotator,
        "instruction": record.fields["instruction"],
        "context": record.fields.get("context") or "",
        "response": record.fields["response"],
        "category": record.fields["category"],
    }


def collect(api_url: str, api_key: str, annotators: list[str], output_dir: Path, timings: BaselineTimings) -> pd.DataFrame:
    """Read every dataset back with responses, one after the other, then the pandas post-processing."""
    started = time.perf_counter()
    client = rg.Argilla(api_url=api_url, api_key=api_key)
    names = {user.id: user.username for user in client.users}
    rows = []
    for annotator in annotators:
        dataset = client.datasets(BASELINE_DATASET, workspace=f"{BASELINE_WORKSPACE_PREFIX}{annotator}")
        discarded = rg.Query(filter=rg.Filter(("response.status", "==", "discarded")))
        for record in dataset.records(query=discarded, with_responses=False):
            rows.append({**originals_of(record, annotator), "annotator": annotator, "status": "discarded"})
        not_discarded = rg.Query(filter=rg.Filter(("response.status", "in", ["pending", "draft", "submitted"])))
        for record in dataset.records(query=not_discarded, with_responses=True):
            originals = originals_of(record, annotator)
            answers = {}
            for response in record.responses:
                answers.setdefault(response.user_id, {"status": response.status})[response.question_name] = response.value
            if not answers:
                rows.append({**originals, "annotator": annotator, "status": "pending"})
            for user_id, values in answers.items():
                rows.append(
                    {
                        **originals,
                        "annotator": names.get(user_id, str(user_id)),
                        "status": getattr(values["status"], "value", values["status"]),
                        "new_instruction": values.get("new-instruction"),
                        "new_input": values.get("new-input"),
                        "new_response": values.get("new-response"),
                    }
                )
    read_seconds = time.perf_counter() - started
    feedback = feedback_frame([{column: row.get(column) for column in FEEDBACK_COLUMNS} for row in rows])
    statistics = compute_statistics(feedback)
    charts = output_dir / "statistics"
    charts.mkdir(parents=True, exist_ok=True)
    for name, figure in plotly_figures(statistics).items():
        figure.write_html(charts / f"{name}.html", include_plotlyjs="directory")
    curated = curate(feedback)
    write_curated(curated, "Curated Dolly (tutorial baseline)", output_dir / "curated")
    timings.collect_seconds = time.perf_counter() - started
    timings.details.update(read_seconds=read_seconds, rows=len(feedback), curated=len(curated))
    return feedback
