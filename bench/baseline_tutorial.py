"""The baseline: the Dolly curation tutorial's procedure, ported to the argilla 2.x client as it is written.

The tutorial ("Curate an instruction dataset for supervised fine-tuning", Argilla 1.x docs,
`curating-feedback-instructiondataset.ipynb`) builds one record per row with the four fields
and the row's id as external id, and nothing else: no suggestions, no metadata (its questions
say "If the original instruction is ok, copy and paste it here"). It shuffles the records,
deals them to the server's annotators in chunks the size of the team, and for each annotator
in turn creates their workspace if missing, a `curate_dolly` dataset with its fields,
questions and guidelines, and pushes the records with the client's defaults. This port keeps
all of that, loops included; `FeedbackRecord(..., external_id=...)` becomes `Record(id=...)`,
`push_to_argilla` becomes `Dataset.create()` and `records.log(records)` (batches of 256).

Departures, none of which makes it faster:
- the workspaces are named `tutorial-<annotator>`, not `<annotator>`, so that the baseline and
  the pipeline (whose workspaces are the annotators' names) can share one server;
- the shuffle is seeded, so that runs deal the same shares;
- collecting reads discarded records with a status query and is not the notebook's
  post-processing loop, whose inverted `if record.responses: continue` drops every answer
  (see /work/shared/notes: argilla client facts): the post-processing calls the project's pure
  functions, so both sides do the same pandas work and the comparison measures the Argilla
  round trips.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import argilla as rg
import pandas as pd

from curation_assets.argilla_adapter.mapping import feedback_frame
from curation_assets.defs.publishing import write_curated
from curation_assets.logic.curation import curate
from curation_assets.logic.statistics import compute_statistics, plotly_figures
from curation_assets.logic.vocabulary import FEEDBACK_COLUMNS

BASELINE_DATASET = "curate_dolly"
BASELINE_WORKSPACE_PREFIX = "tutorial-"
SHUFFLE_SEED = 42

# The tutorial's guidelines, verbatim (its "2 - Final input" says "instruction field": kept).
TUTORIAL_GUIDELINES = (
    "In this dataset, you will find a collection of records that show a category, an instruction, an input and a "
    "response to that instruction. The aim of the project is to correct the instructions, input and responses to make "
    "sure they are of the highest quality and that they match the task category that they belong to. All three texts "
    "should be clear and include real information. In addition, the response should be as complete but concise as "
    "possible.\n\nTo curate the dataset, you will need to provide an answer to the following text fields:\n\n"
    "1 - Final instruction:\nThe final version of the instruction field. You may copy it using the copy icon in the "
    "instruction field. Leave it as it is if it's ok or apply any necessary corrections. Remember to change the "
    "instruction if it doesn't represent well the task category of the record.\n\n"
    "2 - Final input:\nThe final version of the instruction field. You may copy it using the copy icon in the input "
    "field. Leave it as it is if it's ok or apply any necessary corrections. If the task category and instruction don't "
    "need of an input to be completed, leave this question blank.\n\n"
    "3 - Final response:\nThe final version of the response field. You may copy it using the copy icon in the "
    "response field. Leave it as it is if it's ok or apply any necessary corrections. Check that the response makes "
    "sense given all the fields above.\n\n"
    "You will need to provide at least an instruction and a response for all records. If you are not sure about a "
    "record and you prefer not to provide a response, click Discard."
)


@dataclass
class BaselineTimings:
    push_seconds: float = 0.0
    collect_seconds: float = 0.0
    details: dict = field(default_factory=dict)


def tutorial_settings() -> rg.Settings:
    """The tutorial's fields, questions and guidelines (a new object per dataset: the 2.x client binds settings to one)."""
    fields = [
        rg.TextField(name="category", title="Task category"),
        rg.TextField(name="instruction"),
        rg.TextField(name="context", title="Input", required=False),
        rg.TextField(name="response"),
    ]
    questions = [
        rg.TextQuestion(
            name="new-instruction",
            title="Final instruction:",
            description="Write the final version of the instruction, making sure that it matches the task category. "
            "If the original instruction is ok, copy and paste it here.",
            required=True,
        ),
        rg.TextQuestion(
            name="new-input",
            title="Final input:",
            description="Write the final version of the input, making sure that it makes sense with the task category. "
            "If the original input is ok, copy and paste it here. If an input is not needed, leave this empty.",
            required=False,
        ),
        rg.TextQuestion(
            name="new-response",
            title="Final response:",
            description="Write the final version of the response, making sure that it matches the task category and "
            "makes sense for the instruction (and input) provided. If the original response is ok, copy and paste it here.",
            required=True,
        ),
    ]
    return rg.Settings(guidelines=TUTORIAL_GUIDELINES, fields=fields, questions=questions)


def push(api_url: str, api_key: str, source: Path, timings: BaselineTimings) -> dict[str, int]:
    """The tutorial's import: records, shuffle, deal to the annotators, one dataset each, in turn.

    Returns how many records each annotator was dealt (also in `timings.details["shares"]`).
    """
    started = time.perf_counter()
    client = rg.Argilla(api_url=api_url, api_key=api_key)
    data = pd.read_parquet(source).to_dict("records")

    # format the data as Argilla records
    records = [
        rg.Record(
            fields={
                "category": record["category"],
                "instruction": record["instruction"],
                "response": record["response"],
                "context": record["context"],
            },
            id=record["id"],
        )
        for record in data
    ]  # fmt: skip

    users = [user for user in client.users if user.role == "annotator"]

    # shuffle the records to get a random assignment
    random.Random(SHUFFLE_SEED).shuffle(records)

    # build a dictionary where the key is the username and the value is the list of records assigned to them
    assignments = defaultdict(list)

    # divide your records in chunks of the same length as the users list and make the assignments
    n = len(users)
    chunked_records = [records[i : i + n] for i in range(0, len(records), n)]
    for chunk in chunked_records:
        for idx, record in enumerate(chunk):
            assignments[users[idx].username].append(record)

    for username, records in assignments.items():
        # check that the user has a personal workspace and create it if not
        workspace = client.workspaces(f"{BASELINE_WORKSPACE_PREFIX}{username}")
        if workspace is None:
            workspace = rg.Workspace(name=f"{BASELINE_WORKSPACE_PREFIX}{username}", client=client).create()
            workspace.add_user(client.users(username=username))

        # create a dataset for each annotator and push it to their personal workspace
        dataset = rg.Dataset(
            name=BASELINE_DATASET, workspace=workspace, settings=tutorial_settings(), client=client
        ).create()
        dataset.records.log(records)
    timings.push_seconds = time.perf_counter() - started
    shares = {username: len(records) for username, records in assignments.items()}
    timings.details["shares"] = shares
    return shares


def originals_of(record: rg.Record, annotator: str) -> dict:
    return {
        "record_id": record.id,
        "shard": annotator,
        "instruction": record.fields["instruction"],
        "context": record.fields.get("context") or "",
        "response": record.fields["response"],
        "category": record.fields["category"],
    }


def collect(
    api_url: str, api_key: str, annotators: list[str], output_dir: Path, timings: BaselineTimings
) -> pd.DataFrame:
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
                answers.setdefault(response.user_id, {"status": response.status})[response.question_name] = (
                    response.value
                )
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
