"""Incremental feedback reads against the real embedded Argilla: always the same frame as a full read."""

import time

import dagster as dg
import httpx
import pandas as pd
import pytest

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets.argilla_adapter.mapping import feedback_frame, feedback_rows, to_argilla_records
from curation_assets.argilla_adapter.rest import Connection
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.argilla_helpers import annotator_account
from curation_assets_tests.harness import ProjectOnServer, metadata_of

pytestmark = pytest.mark.server
SHARDS = {"ana": 12, "bruno": 10}
DATASET_NAME = "incremental"


def rows(start: int, count: int) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": str(i),
                "category": "open_qa",
                "instruction": f"Question {i}?",
                "context": "" if i % 2 else f"Context {i}.",
                "response": f"Answer {i}.",
            }
            for i in range(start, start + count)
        ]
    )


def full_read(argilla: ArgillaClient) -> pd.DataFrame:
    names = {user_id: name for name, user_id in argilla.user_ids_by_name().items()}
    frames = [
        feedback_frame(feedback_rows(list(argilla.iter_records(dataset.id)), shard, names))
        for shard, dataset in sorted(argilla.datasets_named(DATASET_NAME).items())
    ]
    return pd.concat(frames, ignore_index=True)


def same_rows(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal up to row order and the spelling of a missing answer (None or NaN, as pandas builds it)."""

    def canonical(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values(["record_id", "annotator"]).reset_index(drop=True)
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(canonical(left), canonical(right))


def test_incremental_refresh_equals_a_full_read(fresh_argilla_server, tmp_path):
    server = fresh_argilla_server
    argilla = ArgillaClient(Connection(server.url, server.owner_api_key))
    assert argilla.changes_since_now(), "the embedded server announces that record.updated_at follows responses"
    start = 0
    for annotator, count in SHARDS.items():
        dataset = argilla.ensure_annotator_dataset(annotator, DATASET_NAME, curation_dataset_settings)
        argilla.upsert_records(dataset, to_argilla_records(rows(start, count)))
        start += count

    def collect() -> tuple[pd.DataFrame, dict]:
        with dg.instance_for_test() as instance:
            pipeline = ProjectOnServer(server, instance, tmp_path, name=DATASET_NAME)
            # Alone: no plan exists here for the check that compares Argilla with it.
            result = pipeline.materialize(["collected_feedback"], checks=False)
        node = pipeline.node("collected_feedback")
        return result.output_for_node(node), metadata_of(result, node)

    # Each read also re-reads what changed in the 2 s before it (clock slack), counted from the server's
    # Date header, which has whole seconds: wait out 3 s, so the counts below are exactly the new answers.
    time.sleep(3.5)
    first, metadata = collect()
    time.sleep(3.5)
    assert metadata["datasets_read_in_full"] == ["ana", "bruno"] and metadata["records_read"] == 22
    same_rows(first, full_read(argilla))

    answers = {"new-instruction": "Better question?", "new-response": "Better answer."}
    ana = annotator_account(server, "ana")
    with AnnotatorSession(server.url, ana.api_key) as session:
        dataset_id = session.dataset_id(DATASET_NAME, "ana")
        queue, _ = session.queue(dataset_id, limit=4)
        session.respond(queue[0], "submitted", answers)
        session.respond(queue[1], "draft", answers)
        session.respond(queue[2], "discarded")
    second, metadata = collect()
    assert metadata["datasets_read_in_full"] == [] and metadata["records_read"] == 3, "only the three answered records"
    assert second["status"].value_counts().to_dict() == {"pending": 19, "submitted": 1, "draft": 1, "discarded": 1}
    same_rows(second, full_read(argilla))

    # Edits of existing answers and a withdrawn answer leave the counts unchanged: still seen.
    with AnnotatorSession(server.url, ana.api_key) as session:
        drafts, _ = session.queue(dataset_id, status="draft", limit=10)
        session.respond(drafts[0], "submitted", {**answers, "new-response": "Final answer."})
        submitted, _ = session.queue(dataset_id, status="submitted", limit=10)
        edited = next(record for record in submitted if record.id == queue[0].id)
        session.respond(edited, "submitted", {**answers, "new-instruction": "Edited again?"})
        discarded, _ = session.queue(dataset_id, status="discarded", limit=10)
        session.request("DELETE", f"/api/v1/responses/{discarded[0].my_response['id']}")
    third, metadata = collect()
    assert metadata["datasets_read_in_full"] == [] and metadata["records_read"] == 3
    assert "Edited again?" in set(third["new_instruction"]) and "Final answer." in set(third["new_response"])
    same_rows(third, full_read(argilla))

    # A record deleted behind the pipeline's back: the counts disagree, so that dataset is read in full.
    bruno_dataset = argilla.datasets_named(DATASET_NAME)["bruno"].id
    victim = next(argilla.iter_records(bruno_dataset))["id"]
    httpx.delete(
        f"{server.url}/api/v1/datasets/{bruno_dataset}/records",
        params={"ids": victim},
        headers={"X-Argilla-Api-Key": server.owner_api_key},
    ).raise_for_status()
    fourth, metadata = collect()
    assert metadata["datasets_read_in_full"] == ["bruno"] and len(fourth) == 21
    same_rows(fourth, full_read(argilla))
