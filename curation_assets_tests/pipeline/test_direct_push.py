"""The push's bulk JSON (`record_items` → `upsert_record_items`) stores what the argilla SDK's `records.log` of
`to_argilla_records` stores: same records in the same order, fields, metadata, suggestions (value, agent, score,
type), statuses, searches and progress, on the server with its speedups and with argilla-server's own write path.

Differential: the same rows go both ways into two datasets of one server, first as a new push, then as an update
of every record with edited text and signals; everything read back over REST is compared."""

import pytest

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.argilla_adapter.dataset_settings import (
    QUALITY_METADATA_NAMES,
    curation_dataset_settings,
    quality_metadata_properties,
)
from curation_assets.argilla_adapter.errors import ArgillaRequestError
from curation_assets.argilla_adapter.mapping import record_items, to_argilla_records
from curation_assets.argilla_adapter.rest import Connection
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.logic.quality import compute_quality_signals, review_order

pytestmark = pytest.mark.server
ANNOTATOR = "chen"


def stored(argilla: ArgillaClient, dataset_id: str) -> list[dict]:
    """Every record as the owner reads it, without ids and timestamps, suggestions keyed by question name."""
    questions = {
        q["id"]: q["name"] for q in argilla.request("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]
    }
    return [
        {
            "external_id": record["external_id"],
            "fields": record["fields"],
            "metadata": record["metadata"],
            "status": record["status"],
            "suggestions": sorted(
                (questions[s["question_id"]], s["value"], s["agent"], s["score"], s["type"])
                for s in record["suggestions"]
            ),
        }
        for record in argilla.iter_records(dataset_id, include=("responses", "suggestions"))
    ]


def answers(argilla: ArgillaClient, dataset_id: str) -> dict:
    """The search and progress answers an annotator's queue and the pipeline's counts rely on."""
    flagged = argilla.request(
        "POST",
        f"/api/v1/me/datasets/{dataset_id}/records/search",
        json={
            "query": {"text": {"q": "the"}},
            "filters": {
                "and": [{"type": "range", "scope": {"entity": "metadata", "metadata_property": "priority"}, "ge": 1}]
            },
        },
        params={"limit": 1000},
    )
    return {
        "progress": argilla.request("GET", f"/api/v1/datasets/{dataset_id}/progress"),
        "total": argilla.record_total(dataset_id),
        "flagged_matching_the": sorted(item["record"]["external_id"] for item in flagged["items"]),
    }


def test_direct_push_stores_what_the_sdk_stores(argilla_server_each_way):
    server = argilla_server_each_way
    argilla = ArgillaClient(Connection(server.url, server.owner_api_key))
    names = {"sdk": "direct_push_sdk", "direct": "direct_push_items"}
    datasets = {}
    for way, name in names.items():
        for existing in argilla.datasets_named(name).values():
            argilla.delete_dataset(existing)
        datasets[way] = argilla.ensure_annotator_dataset(ANNOTATOR, name, curation_dataset_settings)
    # The names the push's skip check looks for are the properties a push declares.
    assert [prop.name for prop in quality_metadata_properties()] == list(QUALITY_METADATA_NAMES)

    excerpt = load_shipped_dolly_excerpt()
    edited = excerpt.assign(response=excerpt["response"] + " [edited]", context=excerpt["context"].str.upper())
    for rows in (excerpt, edited):
        signals = compute_quality_signals(rows)
        ordered = review_order(rows, signals)
        fields = argilla.field_names(datasets["sdk"])
        argilla.upsert_records(datasets["sdk"], to_argilla_records(ordered, signals, fields))
        sent = argilla.upsert_record_items(
            datasets["direct"],
            record_items(ordered, signals, fields, argilla.question_ids(datasets["direct"])),
        )
        assert sent == len(rows)
        by_sdk, direct = stored(argilla, datasets["sdk"].id), stored(argilla, datasets["direct"].id)
        assert [r["external_id"] for r in direct] == list(ordered["id"].astype(str)), "the queue's order is the push's"
        assert direct == by_sdk
        # Not vacuous: flagged records, three suggestions on some records, suggestions on every one.
        assert any(r["metadata"]["priority"] > 0 for r in direct) and any(len(r["suggestions"]) >= 3 for r in direct)
        assert all(r["suggestions"] for r in direct)
        assert answers(argilla, datasets["direct"].id) == answers(argilla, datasets["sdk"].id)


def test_a_rejected_batch_names_its_records_and_keeps_the_ones_before(argilla_server):
    argilla = ArgillaClient(Connection(argilla_server.url, argilla_server.owner_api_key, log_batch_size=10))
    for existing in argilla.datasets_named("direct_push_rejected").values():
        argilla.delete_dataset(existing)
    dataset = argilla.ensure_annotator_dataset(ANNOTATOR, "direct_push_rejected", curation_dataset_settings)
    items = list(record_items(load_shipped_dolly_excerpt().head(25), None, None, argilla.question_ids(dataset)))
    items[14]["fields"]["not_a_field"] = "x"
    with pytest.raises(ArgillaRequestError, match=r"rejected records 11 to 20 .*the ones before were stored"):
        argilla.upsert_record_items(dataset, items)
    assert argilla.record_total(dataset.id) == 10


def test_the_push_asks_for_no_answer_and_only_the_embedded_write_path_leaves_it_out(argilla_server_each_way, request):
    """`Prefer: return=minimal`: the set-based path answers 204 without building the answer; argilla-server's own
    path (speedups off, PostgreSQL) ignores the header as RFC 7240 allows and answers in full. What is stored is
    the same either way (the differential test above pushes with the header on every server kind)."""
    server = argilla_server_each_way
    argilla = ArgillaClient(Connection(server.url, server.owner_api_key, log_batch_size=10))
    for existing in argilla.datasets_named("direct_push_minimal").values():
        argilla.delete_dataset(existing)
    dataset = argilla.ensure_annotator_dataset(ANNOTATOR, "direct_push_minimal", curation_dataset_settings)
    items = list(record_items(load_shipped_dolly_excerpt().head(25), None, None, argilla.question_ids(dataset)))
    answers_seen = []
    argilla.http.event_hooks["response"].append(
        lambda answer: answers_seen.append((answer.read(), answer)) if answer.request.method == "PUT" else None
    )
    assert argilla.upsert_record_items(dataset, items) == 25
    assert argilla.record_total(dataset.id) == 25
    assert [answer.request.headers["prefer"] for _, answer in answers_seen] == ["return=minimal"] * 3
    if request.node.callspec.params["argilla_server_each_way"] == "speedups on":
        assert [(answer.status_code, body) for body, answer in answers_seen] == [(204, b"")] * 3
        assert all(answer.headers["preference-applied"] == "return=minimal" for _, answer in answers_seen)
    else:
        assert [answer.status_code for _, answer in answers_seen] == [200] * 3
        assert [len(answer.json()["items"]) for _, answer in answers_seen] == [10, 10, 5]
        assert not any("preference-applied" in answer.headers for _, answer in answers_seen)
