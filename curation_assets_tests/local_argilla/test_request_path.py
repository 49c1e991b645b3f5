"""The annotator's per-record requests with the runtime's request-path speedups on (local_argilla/request_path.py).

What they remember lives within one request: a membership removed, or a metadata property hidden
from annotators, takes effect on the next request. Concurrent answers are all stored, once, and
each answered record's `updated_at` is at least its answer's (the pipeline's incremental reads
rely on it, whether the engine or the server's status update moved it).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime

import argilla as rg
import httpx
import pytest

from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets.local_argilla.request_path import QUEUE_INDEX_NAME
from curation_assets_tests.argilla_helpers import (
    DOLLY_LIKE_ROWS,
    annotator_account,
    as_records,
    owner_client,
    stored_records,
)

pytestmark = pytest.mark.server

WORKSPACE = DATASET = "request_path"
PENDING_QUEUE = {
    "filters": {
        "and": [
            {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
            {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]},
        ]
    }
}


@pytest.fixture(scope="module")
def dataset(argilla_server):
    client = owner_client(argilla_server)
    workspace = rg.Workspace(name=WORKSPACE, client=client).create()
    for username in ("ana", "bruno"):
        workspace.add_user(client.users(username=username))
    settings = curation_dataset_settings()
    settings.metadata.add(rg.IntegerMetadataProperty("reviewer_score", visible_for_annotators=False))
    dataset = rg.Dataset(name=DATASET, workspace=workspace, settings=settings, client=client).create()
    records = as_records(DOLLY_LIKE_ROWS)
    for record in records:
        record.metadata["priority"] = 1
        record.metadata["reviewer_score"] = 7
    dataset.records.log(records)
    return dataset


def queue(server, api_key: str, dataset_id, limit: int = 1) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/me/datasets/{dataset_id}/records/search",
        headers={"X-Argilla-Api-Key": api_key},
        params=[("include", "responses"), ("include", "suggestions"), ("limit", limit)],
        json=PENDING_QUEUE,
    )


def test_a_membership_removed_ends_access_on_the_next_request(argilla_server, dataset):
    bruno = annotator_account(argilla_server, "bruno")
    owner = {"X-Argilla-Api-Key": argilla_server.owner_api_key}
    users = httpx.get(f"{argilla_server.url}/api/v1/users", headers=owner).json()["items"]
    bruno_id = next(user["id"] for user in users if user["username"] == "bruno")
    membership = f"{argilla_server.url}/api/v1/workspaces/{dataset.workspace.id}/users/{bruno_id}"

    answer = queue(argilla_server, bruno.api_key, dataset.id)
    assert answer.status_code == 200
    assert answer.headers["server-timing"].startswith("total;dur=")
    (item,) = answer.json()["items"]
    # Metadata filtered by the annotator's rights, as the server does: the hidden property is left out.
    assert item["record"]["metadata"]["priority"] == 1
    assert "reviewer_score" not in item["record"]["metadata"]

    assert httpx.delete(membership, headers=owner).status_code == 200
    try:
        assert queue(argilla_server, bruno.api_key, dataset.id).status_code == 403
        record_id = item["record"]["id"]
        refused = httpx.post(
            f"{argilla_server.url}/api/v1/records/{record_id}/responses",
            headers={"X-Argilla-Api-Key": bruno.api_key},
            json={"status": "discarded"},
        )
        assert refused.status_code == 403
    finally:
        httpx.post(
            f"{argilla_server.url}/api/v1/workspaces/{dataset.workspace.id}/users",
            headers=owner,
            json={"user_id": bruno_id},
        ).raise_for_status()
    assert queue(argilla_server, bruno.api_key, dataset.id).status_code == 200


def test_concurrent_answers_are_stored_once_and_move_their_records(argilla_server, dataset):
    ana = annotator_account(argilla_server, "ana")
    page = queue(argilla_server, ana.api_key, dataset.id, limit=len(DOLLY_LIKE_ROWS)).json()["items"]
    records = [item["record"] for item in page]
    assert len(records) == len(DOLLY_LIKE_ROWS)

    questions = httpx.get(
        f"{argilla_server.url}/api/v1/datasets/{dataset.id}/questions", headers={"X-Argilla-Api-Key": ana.api_key}
    ).json()["items"]
    question_names = {question["id"]: question["name"] for question in questions}

    def answer(index: int, record: dict) -> dict:
        # As the UI submits: the suggestions as pre-filled (every required question has one), one of them edited.
        values = {question_names[s["question_id"]]: {"value": s["value"]} for s in record["suggestions"]}
        values["new-response"] = {"value": f"answer {index}"}
        return {"status": "submitted" if index % 2 else "draft", "values": values}

    async def answer_all() -> list[httpx.Response]:
        headers = {"X-Argilla-Api-Key": ana.api_key}
        async with httpx.AsyncClient(base_url=argilla_server.url, headers=headers, timeout=60) as client:
            return await asyncio.gather(
                *(
                    client.post(f"/api/v1/records/{record['id']}/responses", json=answer(index, record))
                    for index, record in enumerate(records)
                )
            )

    answers = asyncio.run(answer_all())
    assert [answer.status_code for answer in answers] == [201] * len(records)

    stored = stored_records(argilla_server, dataset.id)
    by_id = {record["id"]: record for record in stored}
    for index, record in enumerate(records):
        (response,) = by_id[record["id"]]["responses"]
        assert response["values"]["new-response"]["value"] == f"answer {index}"
        # A draft leaves the record's status alone, so only the engine's write moved it; a submission moved it twice.
        assert datetime.fromisoformat(by_id[record["id"]]["updated_at"]) >= datetime.fromisoformat(
            response["updated_at"]
        )
    assert queue(argilla_server, ana.api_key, dataset.id).json()["total"] == 0


def test_the_pending_queue_is_read_through_its_index(argilla_server, dataset):
    with sqlite3.connect(f"file:{argilla_server.config.database_path}?mode=ro", uri=True) as database:
        plan = database.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM records WHERE dataset_id = ? AND status = 'pending' "
            "ORDER BY inserted_at, rowid LIMIT 1",
            (dataset.id.hex,),
        ).fetchall()
    details = " ".join(row[-1] for row in plan)
    assert QUEUE_INDEX_NAME in details and "TEMP B-TREE" not in details
