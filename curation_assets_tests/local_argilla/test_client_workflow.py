"""The real argilla client against the embedded server: the tutorial's dataset, logged and read back."""

from __future__ import annotations

import argilla as rg
import httpx
import pytest

from curation_assets_tests.argilla_helpers import DOLLY_LIKE_ROWS, as_records, create_curation_dataset, owner_client

pytestmark = pytest.mark.server


def test_tutorial_dataset_round_trip_with_responses(argilla_server):
    client = owner_client(argilla_server)
    dataset = create_curation_dataset(client, "ana", "ana", "client_round_trip")

    assert [field.name for field in dataset.settings.fields] == [
        "category",
        "instruction",
        "context",
        "response",
        "quality_notes",
    ]
    assert dataset.settings.fields["quality_notes"].required is False
    assert dataset.settings.fields["context"].title == "Input"
    assert dataset.settings.fields["context"].required is False
    assert [(q.name, q.required) for q in dataset.settings.questions] == [
        ("new-instruction", True),
        ("new-input", False),
        ("new-response", True),
    ]
    assert "Curating instruction records" in dataset.settings.guidelines

    ana = client.users(username="ana")
    records = as_records(DOLLY_LIKE_ROWS)
    records[0].responses.add(
        rg.Response("new-instruction", "Edited instruction 0?", user_id=ana.id, status="submitted")
    )
    records[0].responses.add(rg.Response("new-response", "Edited response 0.", user_id=ana.id, status="submitted"))
    records[1].responses.add(rg.Response("new-instruction", "Draft 1", user_id=ana.id))
    dataset.records.log(records)

    read_back = {record.id: record for record in dataset.records(with_responses=True, with_suggestions=True)}
    assert sorted(read_back, key=int) == [row["id"] for row in DOLLY_LIKE_ROWS]
    submitted = read_back["0"].responses["new-response"][0]
    assert (submitted.value, submitted.status) == ("Edited response 0.", "submitted")
    assert read_back["1"].responses["new-instruction"][0].status == "draft"
    assert read_back["1"].suggestions["new-input"].value == DOLLY_LIKE_ROWS[1]["context"]
    assert read_back["1"].fields["context"] == DOLLY_LIKE_ROWS[1]["context"]
    assert not read_back["2"].responses


def test_relogging_the_same_ids_updates_instead_of_duplicating(argilla_server):
    client = owner_client(argilla_server)
    dataset = create_curation_dataset(client, "bruno", "bruno", "relog")
    dataset.records.log(as_records(DOLLY_LIKE_ROWS))
    changed = [dict(row, response=row["response"] + " (v2)") for row in DOLLY_LIKE_ROWS]
    dataset.records.log(as_records(changed))

    records = list(dataset.records())
    assert len(records) == len(DOLLY_LIKE_ROWS)
    assert {record.fields["response"] for record in records} == {row["response"] for row in changed}
    progress = httpx.get(
        f"{argilla_server.url}/api/v1/datasets/{dataset.id}/progress",
        headers={"X-Argilla-Api-Key": argilla_server.owner_api_key},
    ).json()
    assert (progress["total"], progress["completed"], progress["pending"]) == (
        len(DOLLY_LIKE_ROWS),
        0,
        len(DOLLY_LIKE_ROWS),
    )
