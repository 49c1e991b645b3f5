"""The database search engine, through the real server's REST API, against answers worked out by hand.

One small dataset (8 records) covers what the engine must know: responses by two annotators
in every status, suggestions with agents, types and (list) scores, metadata of the three
kinds (one terms value is a list, one record has none), two text fields and a vector field.
Each case is a search body and the external ids expected, in order. The module runs twice:
against the embedded default and against a server with every speedup off, which must answer alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import argilla as rg
import httpx
import pytest

from curation_assets_tests.argilla_helpers import annotator_account, owner_client

pytestmark = pytest.mark.server

ANNOTATORS = ("ana", "bruno")

# id: text, notes, metadata, vector
RECORDS = {
    "r1": ("The quick brown fox", "", {"lang": "en", "length": 10, "quality": 0.9}, [1.0, 0.0, 0.0]),
    "r2": ("A lazy dog sleeps", "", {"lang": "en", "length": 20, "quality": 0.5}, [0.9, 0.1, 0.0]),
    "r3": ("Le renard brun rapide", "", {"lang": "fr", "length": 30, "quality": 0.2}, [0.0, 1.0, 0.0]),
    "r4": ("Quick thinking FOX jumps", "a fast animal", {"lang": "de", "length": 40, "quality": 0.7}, [0.7, 0.7, 0.0]),
    "r5": ("Nothing to see here, 1000 times", "", {"lang": "fr", "length": 50, "quality": 0.1}, [0.0, 0.0, 1.0]),
    "r6": ("100% pure_text", "", {"lang": ["en", "fr"], "length": 60, "quality": 0.95}, None),
    "r7": ("Élan vital", "", None, [-1.0, 0.0, 0.0]),
    "r8": ("fox terrier", "", {"lang": "en", "length": 80, "quality": 0.3}, [0.5, 0.5, 0.7]),
}

# id: {user: (status, values)}
RESPONSES = {
    "r1": {"ana": ("submitted", {"rating": 5, "label": "pos", "topics": ["a", "b"]})},
    "r2": {"ana": ("draft", {"rating": 2}), "bruno": ("submitted", {"rating": 4, "label": "neg", "topics": ["c"]})},
    "r3": {"ana": ("discarded", {"rating": 1})},
    "r4": {"bruno": ("draft", {"rating": 3, "label": "pos"})},
    "r6": {"ana": ("submitted", {"rating": 1, "label": "neg"}), "bruno": ("submitted", {"rating": 2, "topics": ["b"]})},
    "r7": {"bruno": ("discarded", {"rating": 4})},
    "r8": {"ana": ("draft", {"label": "neu"}), "bruno": ("draft", {"rating": 5})},
}

# id: [(question, value, score, agent, type)]
SUGGESTIONS = {
    "r1": [("label", "pos", 0.9, "model-a", "model"), ("topics", ["a", "b"], [0.8, 0.3], "model-a", "model")],
    "r2": [("label", "neg", 0.4, "model-b", "model")],
    "r3": [("label", "neu", 0.1, "annotator", "human")],
    "r4": [("label", "pos", 0.6, "model-a", "model"), ("topics", ["c"], [0.5], "model-a", "model")],
    "r6": [("label", "neg", 0.95, "model-b", "model")],
    "r8": [("label", "neu", 0.2, "model-b", None)],
}

# Records are logged in two batches, a moment apart, so that inserted_at can be filtered on.
FIRST_BATCH, SECOND_BATCH = ["r1", "r2", "r3", "r4"], ["r5", "r6", "r7", "r8"]
ALL = FIRST_BATCH + SECOND_BATCH


@dataclass
class ConformanceDataset:
    id: str
    record_ids: dict[str, str]  # external id -> record id
    inserted_at: dict[str, str]  # external id -> ISO timestamp, as the API reports it


def _settings() -> rg.Settings:
    return rg.Settings(
        fields=[rg.TextField(name="text"), rg.TextField(name="notes", required=False)],
        questions=[
            rg.RatingQuestion(name="rating", values=[1, 2, 3, 4, 5], required=True),
            rg.LabelQuestion(name="label", labels=["pos", "neg", "neu"], required=False),
            rg.MultiLabelQuestion(name="topics", labels=["a", "b", "c"], required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty(name="lang"),
            rg.IntegerMetadataProperty(name="length"),
            rg.FloatMetadataProperty(name="quality"),
        ],
        vectors=[rg.VectorField(name="emb", dimensions=3)],
    )


def _argilla_record(external_id: str, user_ids: dict[str, Any]) -> rg.Record:
    text, notes, metadata, vector = RECORDS[external_id]
    responses = [
        rg.Response(question, value, user_id=user_ids[user], status=status)
        for user, (status, values) in RESPONSES.get(external_id, {}).items()
        for question, value in values.items()
    ]
    suggestions = [
        rg.Suggestion(question, value, score=score, agent=agent, type=kind)
        for question, value, score, agent, kind in SUGGESTIONS.get(external_id, [])
    ]
    return rg.Record(
        id=external_id,
        fields={"text": text, **({"notes": notes} if notes else {})},
        metadata=metadata or {},
        vectors={"emb": vector} if vector else {},
        responses=responses,
        suggestions=suggestions,
    )


@pytest.fixture(scope="module")
def conformance(argilla_server_each_way) -> ConformanceDataset:
    client = owner_client(argilla_server_each_way)
    workspace = rg.Workspace(name="search-conformance", client=client).create()
    user_ids = {}
    for name in ANNOTATORS:
        user = client.users(username=name)
        workspace.add_user(user)
        user_ids[name] = user.id
    dataset = rg.Dataset(name="search-conformance", workspace=workspace, settings=_settings(), client=client).create()
    dataset.records.log([_argilla_record(external_id, user_ids) for external_id in FIRST_BATCH])
    time.sleep(0.05)
    dataset.records.log([_argilla_record(external_id, user_ids) for external_id in SECOND_BATCH])

    listed = httpx.get(
        f"{argilla_server_each_way.url}/api/v1/datasets/{dataset.id}/records",
        headers=_owner(argilla_server_each_way),
        params={"limit": 100},
    ).json()["items"]
    return ConformanceDataset(
        id=str(dataset.id),
        record_ids={record["external_id"]: record["id"] for record in listed},
        inserted_at={record["external_id"]: record["inserted_at"] for record in listed},
    )


def _owner(server) -> dict:
    return {"X-Argilla-Api-Key": server.owner_api_key}


def _search(server, dataset_id: str, body: dict, user: str | None = None, **params) -> dict:
    """POST a search as the owner (all responses) or, with `user`, as that annotator (their own)."""
    if user is None:
        url, headers = f"{server.url}/api/v1/datasets/{dataset_id}/records/search", _owner(server)
    else:
        url = f"{server.url}/api/v1/me/datasets/{dataset_id}/records/search"
        headers = {"X-Argilla-Api-Key": annotator_account(server, user).api_key}
    answer = httpx.post(url, headers=headers, json=body, params={"limit": 50, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _external_ids(result: dict) -> list[str]:
    return [item["record"]["external_id"] for item in result["items"]]


# -- the query language -------------------------------------------------------------------------


def record(property: str) -> dict:
    return {"entity": "record", "property": property}


def metadata(name: str) -> dict:
    return {"entity": "metadata", "metadata_property": name}


def suggestion(question: str, property: str = "value") -> dict:
    return {"entity": "suggestion", "question": question, "property": property}


def response(question: str | None = None) -> dict:
    return {"entity": "response", "question": question} if question else {"entity": "response", "property": "status"}


def terms(scope: dict, *values) -> dict:
    return {"type": "terms", "scope": scope, "values": list(values)}


def between(scope: dict, ge=None, le=None) -> dict:
    bounds = {name: value for name, value in (("ge", ge), ("le", le)) if value is not None}
    return {"type": "range", "scope": scope, **bounds}


def where(*filters: dict, **body) -> dict:
    return {"filters": {"and": list(filters)}, **body}


def by(scope: dict, order: str = "asc") -> dict:
    return {"sort": [{"scope": scope, "order": order}]}


def text(q: str, field: str | None = None) -> dict:
    return {"query": {"text": {"q": q, **({"field": field} if field else {})}}}


def nearest(value=None, order="most_similar", record_id=None) -> dict:
    vector = {"name": "emb", "order": order, **({"value": value} if value else {"record_id": record_id})}
    return {"query": {"vector": vector}}


# Bodies that need the server's ids or timestamps are functions of the dataset.
Body = dict | Callable[[ConformanceDataset], dict]

CASES: list[tuple[str, str | None, Body, list[str]]] = [
    # (case, as user (None: owner), body, expected external ids in order)
    ("no query: insertion order", None, {}, ALL),
    # record properties
    ("record external_id terms", None, where(terms(record("external_id"), "r2", "r5")), ["r2", "r5"]),
    ("record id terms", None, lambda d: where(terms(record("id"), d.record_ids["r3"], d.record_ids["r7"])), ["r3", "r7"]),
    ("record id terms, not an id", None, where(terms(record("id"), "not-a-uuid")), []),
    ("record status completed: one submission (min_submitted=1)", None, where(terms(record("status"), "completed")), ["r1", "r2", "r6"]),
    ("record status pending", None, where(terms(record("status"), "pending")), ["r3", "r4", "r5", "r7", "r8"]),
    ("inserted_at from the second batch", None, lambda d: where(between(record("inserted_at"), ge=d.inserted_at["r5"])), SECOND_BATCH),
    ("inserted_at up to the first batch", None, lambda d: where(between(record("inserted_at"), le=d.inserted_at["r4"])), FIRST_BATCH),
    ("updated_at up to a bare date: through that day", None, lambda d: where(between(record("updated_at"), le=d.inserted_at["r8"][:10])), ALL),
    ("sort external_id desc", None, by(record("external_id"), "desc"), ALL[::-1]),
    ("sort status, ties in insertion order", None, by(record("status")), ["r1", "r2", "r6", "r3", "r4", "r5", "r7", "r8"]),
    # response status: pending is "no response in scope", OR-ed with the others
    ("owner: pending = no responses at all", None, where(terms(response(), "pending")), ["r5"]),
    ("owner: submitted by anyone", None, where(terms(response(), "submitted")), ["r1", "r2", "r6"]),
    ("owner: draft by anyone", None, where(terms(response(), "draft")), ["r2", "r4", "r8"]),
    ("owner: pending or discarded", None, where(terms(response(), "pending", "discarded")), ["r3", "r5", "r7"]),
    ("ana: pending", "ana", where(terms(response(), "pending")), ["r4", "r5", "r7"]),
    ("bruno: pending", "bruno", where(terms(response(), "pending")), ["r1", "r3", "r5"]),
    ("ana: draft", "ana", where(terms(response(), "draft")), ["r2", "r8"]),
    ("ana: submitted", "ana", where(terms(response(), "submitted")), ["r1", "r6"]),
    ("ana: discarded", "ana", where(terms(response(), "discarded")), ["r3"]),
    ("ana: pending or draft", "ana", where(terms(response(), "pending", "draft")), ["r2", "r4", "r5", "r7", "r8"]),
    ("bruno: pending or submitted", "bruno", where(terms(response(), "pending", "submitted")), ["r1", "r2", "r3", "r5", "r6"]),
    ("ana's queue as the UI asks it", "ana", where(terms(response(), "pending"), terms(record("status"), "pending")), ["r4", "r5", "r7"]),
    ("bruno's queue as the UI asks it", "bruno", where(terms(response(), "pending"), terms(record("status"), "pending")), ["r3", "r5"]),
    # response values
    ("owner: rating terms", None, where(terms(response("rating"), "5")), ["r1", "r8"]),
    ("owner: rating range", None, where(between(response("rating"), ge=4)), ["r1", "r2", "r7", "r8"]),
    ("owner: label terms", None, where(terms(response("label"), "neg")), ["r2", "r6"]),
    ("owner: multi-label terms match any label", None, where(terms(response("topics"), "b")), ["r1", "r6"]),
    ("ana: rating range, her responses only", "ana", where(between(response("rating"), ge=4)), ["r1"]),
    ("bruno: rating range, his responses only", "bruno", where(between(response("rating"), ge=4)), ["r2", "r7", "r8"]),
    ("owner: sort rating by the average, missing last", None, by(response("rating")), ["r3", "r6", "r2", "r4", "r7", "r1", "r8", "r5"]),
    ("owner: sort rating desc", None, by(response("rating"), "desc"), ["r1", "r8", "r7", "r2", "r4", "r6", "r3", "r5"]),
    ("ana: sort rating by her own", "ana", by(response("rating")), ["r3", "r6", "r2", "r1", "r4", "r5", "r7", "r8"]),
    ("owner: labels cannot be averaged, they sort by text", None, by(response("label")), ["r2", "r6", "r8", "r1", "r4", "r3", "r5", "r7"]),
    # suggestions
    ("suggestion value", None, where(terms(suggestion("label"), "pos")), ["r1", "r4"]),
    ("suggestion multi-label value matches any label", None, where(terms(suggestion("topics"), "b")), ["r1"]),
    ("suggestion agent", None, where(terms(suggestion("label", "agent"), "model-b")), ["r2", "r6", "r8"]),
    ("suggestion type", None, where(terms(suggestion("label", "type"), "human")), ["r3"]),
    ("suggestion score range", None, where(between(suggestion("label", "score"), ge=0.4, le=0.9)), ["r1", "r2", "r4"]),
    ("suggestion list score range matches any score", None, where(between(suggestion("topics", "score"), ge=0.75)), ["r1"]),
    ("sort suggestion score desc, missing last", None, by(suggestion("label", "score"), "desc"), ["r6", "r1", "r4", "r2", "r8", "r3", "r5", "r7"]),
    ("sort suggestion value", None, by(suggestion("label")), ["r2", "r6", "r3", "r8", "r1", "r4", "r5", "r7"]),
    ("sort list scores: smallest ascending", None, by(suggestion("topics", "score")), ["r1", "r4", "r2", "r3", "r5", "r6", "r7", "r8"]),
    ("sort list scores: largest descending", None, by(suggestion("topics", "score"), "desc"), ["r1", "r4", "r2", "r3", "r5", "r6", "r7", "r8"]),
    # metadata
    ("metadata terms, a list value matches any item", None, where(terms(metadata("lang"), "fr")), ["r3", "r5", "r6"]),
    ("metadata terms, several", None, where(terms(metadata("lang"), "en", "de")), ["r1", "r2", "r4", "r6", "r8"]),
    ("metadata integer range", None, where(between(metadata("length"), ge=20, le=40)), ["r2", "r3", "r4"]),
    ("metadata integer lower bound", None, where(between(metadata("length"), ge=50)), ["r5", "r6", "r8"]),
    ("metadata float upper bound", None, where(between(metadata("quality"), le=0.3)), ["r3", "r5", "r8"]),
    ("sort metadata integer desc, missing last", None, by(metadata("length"), "desc"), ["r8", "r6", "r5", "r4", "r3", "r2", "r1", "r7"]),
    ("sort metadata float", None, by(metadata("quality")), ["r5", "r3", "r8", "r2", "r4", "r1", "r6", "r7"]),
    ("sort metadata terms: a list by its first term", None, by(metadata("lang")), ["r4", "r1", "r2", "r6", "r8", "r3", "r5", "r7"]),
    ("sort metadata terms desc: a list by its last term", None, by(metadata("lang"), "desc"), ["r3", "r5", "r6", "r1", "r2", "r8", "r4", "r7"]),
    # text
    ("text: every term, any case", None, text("QUICK fox"), ["r1", "r4"]),
    ("text: one term", None, text("fox"), ["r1", "r4", "r8"]),
    ("text: terms may match different fields", None, text("fast fox"), ["r4"]),
    ("text in one field", None, text("animal", field="notes"), ["r4"]),
    ("text in another field", None, text("animal", field="text"), []),
    ("text: % and _ are not wildcards", None, text("100%"), ["r6"]),
    ("text: underscore literal", None, text("pure_text"), ["r6"]),
    ("text: non-ASCII", None, text("Élan"), ["r7"]),
    ("text: no match", None, text("quick cat"), []),
    # combinations
    ("text and metadata", None, {**text("fox"), **where(terms(metadata("lang"), "en"))}, ["r1", "r8"]),
    ("filter and sort", None, where(terms(record("status"), "pending"), **by(metadata("length"), "desc")), ["r8", "r5", "r4", "r3", "r7"]),
    ("two sorts", None, {"sort": [{"scope": suggestion("label", "agent"), "order": "asc"}, {"scope": metadata("length"), "order": "desc"}]}, ["r3", "r4", "r1", "r8", "r6", "r2", "r5", "r7"]),
    # similarity (most similar first; records without a vector never appear)
    ("similar to a value", None, nearest([1.0, 0.0, 0.0]), ["r1", "r2", "r4", "r8", "r3", "r5", "r7"]),
    ("least similar to a value", None, nearest([1.0, 0.0, 0.0], order="least_similar"), ["r7", "r3", "r5", "r8", "r4", "r2", "r1"]),
    ("similar to a record, itself excluded", None, lambda d: nearest(record_id=d.record_ids["r1"]), ["r2", "r4", "r8", "r3", "r5", "r7"]),
    ("similar with a filter", None, {**nearest([1.0, 0.0, 0.0]), **where(terms(metadata("lang"), "en"))}, ["r1", "r2", "r8"]),
    ("similar with a text query", None, {"query": {**nearest([1.0, 0.0, 0.0])["query"], **text("fox")["query"]}}, ["r1", "r4", "r8"]),
]  # fmt: skip


@pytest.mark.parametrize("case, user, body, expected", CASES, ids=[case[0] for case in CASES])
def test_search(argilla_server_each_way, conformance, case, user, body, expected):
    body = body(conformance) if callable(body) else body
    result = _search(argilla_server_each_way, conformance.id, body, user=user)
    assert _external_ids(result) == expected
    assert result["total"] == len(expected)


@pytest.mark.parametrize(
    "user, body, offset, limit, expected_page, expected_total",
    [
        (None, {}, 0, 3, ["r1", "r2", "r3"], 8),
        (None, {}, 3, 3, ["r4", "r5", "r6"], 8),
        (None, {}, 6, 3, ["r7", "r8"], 8),
        (None, {}, 9, 3, [], 8),
        (None, where(terms(record("status"), "pending")), 2, 2, ["r5", "r7"], 5),
        ("ana", where(terms(response(), "pending")), 1, 1, ["r5"], 3),
        (None, nearest([1.0, 0.0, 0.0]), 1, 2, ["r2", "r4"], 3),
    ],
)
def test_paging_keeps_the_total(
    argilla_server_each_way, conformance, user, body, offset, limit, expected_page, expected_total
):
    # A similarity search looks at offset + limit neighbours; its total counts those it found.
    result = _search(argilla_server_each_way, conformance.id, body, user=user, offset=offset, limit=limit)
    assert _external_ids(result) == expected_page
    assert result["total"] == expected_total


def test_similarity_scores_are_elasticsearch_cosine_scores(argilla_server_each_way, conformance):
    result = _search(argilla_server_each_way, conformance.id, nearest([1.0, 0.0, 0.0]), limit=3)
    scores = [item["query_score"] for item in result["items"]]
    # (1 + cosine) / 2 for cosines 1, 0.9 / |(0.9, 0.1)| and 0.7 / |(0.7, 0.7)|.
    assert scores == pytest.approx([1.0, (1 + 0.9 / (0.82**0.5)) / 2, (1 + 0.5**0.5) / 2])


def test_dataset_progress_counts_records_by_status(argilla_server_each_way, conformance):
    progress = httpx.get(
        f"{argilla_server_each_way.url}/api/v1/datasets/{conformance.id}/progress",
        headers=_owner(argilla_server_each_way),
    )
    assert progress.status_code == 200, progress.text
    assert {key: progress.json()[key] for key in ("total", "completed", "pending")} == {
        "total": 8,
        "completed": 3,
        "pending": 5,
    }


@pytest.mark.parametrize(
    "user, expected",
    [
        ("ana", {"total": 8, "submitted": 2, "discarded": 1, "draft": 2, "pending": 3}),
        ("bruno", {"total": 8, "submitted": 2, "discarded": 1, "draft": 2, "pending": 3}),
    ],
)
def test_user_progress_counts_own_responses(argilla_server_each_way, conformance, user, expected):
    metrics = httpx.get(
        f"{argilla_server_each_way.url}/api/v1/me/datasets/{conformance.id}/metrics",
        headers={"X-Argilla-Api-Key": annotator_account(argilla_server_each_way, user).api_key},
    )
    assert metrics.status_code == 200, metrics.text
    assert metrics.json()["responses"] == expected


@pytest.mark.parametrize(
    "name, expected",
    [
        # A terms total counts values (r6 holds two); a term counts the records holding it.
        ("lang", {"type": "terms", "total": 8, "values": [{"term": "en", "count": 4}, {"term": "fr", "count": 3}, {"term": "de", "count": 1}]}),
        ("length", {"type": "integer", "min": 10, "max": 80}),
        ("quality", {"type": "float", "min": 0.1, "max": 0.95}),
    ],
)  # fmt: skip
def test_metadata_metrics(argilla_server_each_way, conformance, name, expected):
    owner = _owner(argilla_server_each_way)
    properties = httpx.get(
        f"{argilla_server_each_way.url}/api/v1/me/datasets/{conformance.id}/metadata-properties", headers=owner
    )
    (property_id,) = [prop["id"] for prop in properties.json()["items"] if prop["name"] == name]
    metrics = httpx.get(
        f"{argilla_server_each_way.url}/api/v1/metadata-properties/{property_id}/metrics", headers=owner
    )
    assert metrics.status_code == 200, metrics.text
    assert metrics.json() == expected
