"""An annotator works over REST exactly as the web UI does; the owner reads the result back."""

from __future__ import annotations

import httpx
import pytest

from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.argilla_helpers import (
    DOLLY_LIKE_ROWS,
    annotator_account,
    as_records,
    create_curation_dataset,
    owner_client,
)

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def chen_dataset(argilla_server):
    dataset = create_curation_dataset(owner_client(argilla_server), "chen", "chen", "rest_queue")
    dataset.records.log(as_records(DOLLY_LIKE_ROWS))
    return dataset


def test_queue_submit_draft_discard(argilla_server, chen_dataset):
    chen = annotator_account(argilla_server, "chen")
    with AnnotatorSession(argilla_server.url, chen.api_key) as session:
        dataset_id = session.dataset_id("rest_queue", "chen")
        queue, total = session.queue(dataset_id, limit=10)
        assert total == len(DOLLY_LIKE_ROWS)
        assert [record.external_id for record in queue] == [row["id"] for row in DOLLY_LIKE_ROWS]
        first, second, third = queue[:3]
        assert first.suggestions, "the originals are offered as suggestions"

        session.respond(first, "submitted", {"new-instruction": "Better instruction?", "new-response": "Better."})
        session.respond(second, "draft", {"new-instruction": "Half done"})
        session.respond(third, "discarded")

        queue, total = session.queue(dataset_id)
        # The pending view lists only records this annotator has not answered; drafts have their own view.
        assert total == len(DOLLY_LIKE_ROWS) - 3
        assert first.external_id not in [record.external_id for record in queue]
        assert [r.external_id for r in session.queue(dataset_id, status="draft")[0]] == [second.external_id]
        assert [r.external_id for r in session.queue(dataset_id, status="discarded")[0]] == [third.external_id]
        assert [r.external_id for r in session.queue(dataset_id, status="submitted")[0]] == [first.external_id]

        # Finishing the draft updates the same response, it does not add a second one.
        draft = session.queue(dataset_id, status="draft")[0][0]
        session.respond(draft, "submitted", {"new-instruction": "Done now", "new-response": "Complete."})
        assert session.queue(dataset_id, status="draft")[1] == 0

        metrics = session.progress(dataset_id)
        assert metrics["responses"]["submitted"] == 2 and metrics["responses"]["discarded"] == 1

    owner_headers = {"X-Argilla-Api-Key": argilla_server.owner_api_key}
    users_progress = httpx.get(
        f"{argilla_server.url}/api/v1/datasets/{dataset_id}/users/progress", headers=owner_headers
    ).json()
    (chen_progress,) = [user for user in users_progress["users"] if user["username"] == "chen"]
    # The server splits each user's counts by record status; a discard leaves its record pending.
    assert chen_progress["completed"]["submitted"] == 2
    assert chen_progress["pending"]["discarded"] == 1
    progress = httpx.get(f"{argilla_server.url}/api/v1/datasets/{dataset_id}/progress", headers=owner_headers).json()
    # A record is completed by a submission (min_submitted=1); a discard leaves it pending for the team.
    assert (progress["total"], progress["completed"], progress["pending"]) == (6, 2, 4)

    records = httpx.get(
        f"{argilla_server.url}/api/v1/datasets/{dataset_id}/records",
        headers=owner_headers,
        params={"include": "responses", "limit": 100},
    ).json()["items"]
    response_of = {record["external_id"]: record["responses"] for record in records}
    assert response_of[first.external_id][0]["values"]["new-response"]["value"] == "Better."
    assert response_of[second.external_id][0]["values"]["new-instruction"]["value"] == "Done now"
    assert len(response_of[second.external_id]) == 1
    discarded = httpx.post(
        f"{argilla_server.url}/api/v1/datasets/{dataset_id}/records/search",
        headers=owner_headers,
        params={"include": "responses"},
        json={
            "filters": {
                "and": [
                    {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["discarded"]}
                ]
            }
        },
    ).json()
    assert [item["record"]["external_id"] for item in discarded["items"]] == [third.external_id]


def test_an_annotator_cannot_use_owner_endpoints_or_other_workspaces(argilla_server, chen_dataset):
    ana = annotator_account(argilla_server, "ana")
    headers = {"X-Argilla-Api-Key": ana.api_key}
    owner_records = httpx.get(f"{argilla_server.url}/api/v1/datasets/{chen_dataset.id}/records", headers=headers)
    assert owner_records.status_code == 403
    other_queue = httpx.post(
        f"{argilla_server.url}/api/v1/me/datasets/{chen_dataset.id}/records/search", headers=headers, json={}
    )
    assert other_queue.status_code == 403
    assert httpx.get(f"{argilla_server.url}/api/v1/users", headers=headers).status_code == 403
