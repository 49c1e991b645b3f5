"""The database search engine against a table of filters, sorts and queries with known answers."""

import argilla as rg
import httpx
import pytest

from curation_assets_tests.argilla_helpers import annotator_account, owner_client

# id: (text, lang, length, quality, suggestion score, ana's response, bruno's response); "-" = none
TABLE = {
    "r1": ("The quick brown fox", "en", 10, 0.9, 0.1, "submitted", "-"),
    "r2": ("A lazy dog sleeps", "en", 20, 0.5, 0.5, "draft", "submitted"),
    "r3": ("Le renard brun", "fr", 30, 0.2, 0.9, "discarded", "-"),
    "r4": ("Quick thinking FOX", "de", 40, 0.7, 0.3, "-", "draft"),
    "r5": ("Nothing here", "fr", 50, 0.1, 0.7, "-", "-"),
}


@pytest.fixture(scope="module")
def dataset(argilla_server):
    client = owner_client(argilla_server)
    workspace = rg.Workspace(name="conformance", client=client).create()
    users = {name: client.users(username=name) for name in ("ana", "bruno")}
    for user in users.values():
        workspace.add_user(user)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.TextQuestion(name="note", required=True), rg.RatingQuestion(name="rating", values=[1, 2, 3, 4, 5], required=False)],
        metadata=[
            rg.TermsMetadataProperty(name="lang"),
            rg.IntegerMetadataProperty(name="length"),
            rg.FloatMetadataProperty(name="quality"),
        ],
        vectors=[rg.VectorField(name="emb", dimensions=3)],
    )
    dataset = rg.Dataset(name="conformance", workspace=workspace, settings=settings, client=client).create()
    records = []
    for index, (record_id, (text, lang, length, quality, score, ana, bruno)) in enumerate(TABLE.items()):
        responses = [
            rg.Response("note", f"{user} on {record_id}", user_id=users[user].id, status=status)
            for user, status in (("ana", ana), ("bruno", bruno))
            if status not in ("-", "discarded")
        ] + [rg.Response("rating", index + 1, user_id=users["ana"].id, status=ana) for _ in [0] if ana not in ("-", "discarded")]
        records.append(
            rg.Record(
                id=record_id,
                fields={"text": text},
                metadata={"lang": lang, "length": length, "quality": quality},
                suggestions=[rg.Suggestion("note", f"suggested {record_id}", score=score, agent="rules" if score < 0.5 else "model")],
                vectors={"emb": [1.0, float(index), 0.0]},
                responses=responses,
            )
        )
    dataset.records.log(records)
    # Discards go through the API as the UI sends them (no values).
    r3 = next(r for r in httpx.get(
        f"{argilla_server.url}/api/v1/datasets/{dataset.id}/records",
        headers={"X-Argilla-Api-Key": argilla_server.owner_api_key}, params={"limit": 100},
    ).json()["items"] if r["external_id"] == "r3")  # fmt: skip
    ana_key = annotator_account(argilla_server, "ana").api_key
    httpx.post(
        f"{argilla_server.url}/api/v1/records/{r3['id']}/responses",
        headers={"X-Argilla-Api-Key": ana_key},
        json={"status": "discarded"},
    ).raise_for_status()
    return dataset


def terms(entity, values, **scope):
    return {"type": "terms", "scope": {"entity": entity, **scope}, "values": values}


def between(entity, ge=None, le=None, **scope):
    return {"type": "range", "scope": {"entity": entity, **scope}, **({"ge": ge} if ge is not None else {}), **({"le": le} if le is not None else {})}


CASES = [
    ("everything, insertion order", {}, ["r1", "r2", "r3", "r4", "r5"]),
    ("record external_id terms", {"filters": {"and": [terms("record", ["r2", "r5"], property="external_id")]}}, ["r2", "r5"]),
    ("record status completed (min_submitted=1)", {"filters": {"and": [terms("record", ["completed"], property="status")]}}, ["r1", "r2"]),
    ("pending for nobody = no responses at all", {"filters": {"and": [terms("response", ["pending"], property="status")]}}, ["r5"]),
    ("any submitted", {"filters": {"and": [terms("response", ["submitted"], property="status")]}}, ["r1", "r2"]),
    ("pending OR discarded", {"filters": {"and": [terms("response", ["pending", "discarded"], property="status")]}}, ["r3", "r5"]),
    ("metadata terms", {"filters": {"and": [terms("metadata", ["fr"], metadata_property="lang")]}}, ["r3", "r5"]),
    ("metadata integer range", {"filters": {"and": [between("metadata", ge=20, le=40, metadata_property="length")]}}, ["r2", "r3", "r4"]),
    ("metadata float range", {"filters": {"and": [between("metadata", ge=0.5, metadata_property="quality")]}}, ["r1", "r2", "r4"]),
    ("suggestion agent", {"filters": {"and": [terms("suggestion", ["model"], question="note", property="agent")]}}, ["r2", "r3", "r5"]),
    ("suggestion score range", {"filters": {"and": [between("suggestion", ge=0.3, le=0.7, question="note", property="score")]}}, ["r2", "r4", "r5"]),
    ("response value range", {"filters": {"and": [between("response", ge=2, question="rating")]}}, ["r2"]),
    ("and of two filters", {"filters": {"and": [terms("metadata", ["en"], metadata_property="lang"), terms("response", ["submitted"], property="status")]}}, ["r1", "r2"]),
    ("sort metadata desc", {"sort": [{"scope": {"entity": "metadata", "metadata_property": "length"}, "order": "desc"}]}, ["r5", "r4", "r3", "r2", "r1"]),
    ("sort suggestion score asc", {"sort": [{"scope": {"entity": "suggestion", "question": "note", "property": "score"}, "order": "asc"}]}, ["r1", "r4", "r2", "r5", "r3"]),
    ("text: all terms, any case", {"query": {"text": {"q": "QUICK fox"}}}, ["r1", "r4"]),
    ("text in one field", {"query": {"text": {"q": "brun", "field": "text"}}}, ["r3"]),
    ("text with no match", {"query": {"text": {"q": "quick cat"}}}, []),
]  # fmt: skip


@pytest.mark.parametrize("description, body, expected", CASES, ids=[case[0] for case in CASES])
def test_owner_search(argilla_server, dataset, description, body, expected):
    answer = httpx.post(
        f"{argilla_server.url}/api/v1/datasets/{dataset.id}/records/search",
        headers={"X-Argilla-Api-Key": argilla_server.owner_api_key},
        params={"limit": 50},
        json=body,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [item["record"]["external_id"] for item in result["items"]] == expected
    assert result["total"] == len(expected)


@pytest.mark.parametrize(
    "user, statuses, expected",
    [
        ("ana", ["pending"], ["r4", "r5"]),
        ("bruno", ["pending"], ["r1", "r3", "r5"]),
        ("ana", ["draft"], ["r2"]),
        ("ana", ["discarded"], ["r3"]),
        ("bruno", ["pending", "draft"], ["r1", "r3", "r4", "r5"]),
    ],
)
def test_per_user_status_as_the_annotation_page_asks(argilla_server, dataset, user, statuses, expected):
    answer = httpx.post(
        f"{argilla_server.url}/api/v1/me/datasets/{dataset.id}/records/search",
        headers={"X-Argilla-Api-Key": annotator_account(argilla_server, user).api_key},
        params={"limit": 50},
        json={"filters": {"and": [terms("response", statuses, property="status")]}},
    )
    assert answer.status_code == 200, answer.text
    assert [item["record"]["external_id"] for item in answer.json()["items"]] == expected


def test_paging_keeps_the_total(argilla_server, dataset):
    pages = [
        httpx.post(
            f"{argilla_server.url}/api/v1/datasets/{dataset.id}/records/search",
            headers={"X-Argilla-Api-Key": argilla_server.owner_api_key},
            params={"offset": offset, "limit": 2},
            json={},
        ).json()
        for offset in (0, 2, 4)
    ]
    assert [page["total"] for page in pages] == [5, 5, 5]
    assert [item["record"]["external_id"] for page in pages for item in page["items"]] == ["r1", "r2", "r3", "r4", "r5"]


def test_similarity_and_metrics(argilla_server, dataset):
    owner = {"X-Argilla-Api-Key": argilla_server.owner_api_key}
    similar = httpx.post(
        f"{argilla_server.url}/api/v1/datasets/{dataset.id}/records/search",
        headers=owner,
        params={"limit": 3},
        json={"query": {"vector": {"name": "emb", "value": [1.0, 0.0, 0.0]}}},
    ).json()
    assert "items" in similar, similar
    assert [item["record"]["external_id"] for item in similar["items"]] == ["r1", "r2", "r3"]
    properties = httpx.get(f"{argilla_server.url}/api/v1/me/datasets/{dataset.id}/metadata-properties", headers=owner).json()["items"]
    by_name = {prop["name"]: prop["id"] for prop in properties}
    lang = httpx.get(f"{argilla_server.url}/api/v1/metadata-properties/{by_name['lang']}/metrics", headers=owner).json()
    assert lang["total"] == 5 and {v["term"]: v["count"] for v in lang["values"]} == {"en": 2, "fr": 2, "de": 1}
    length = httpx.get(f"{argilla_server.url}/api/v1/metadata-properties/{by_name['length']}/metrics", headers=owner).json()
    assert (length["min"], length["max"]) == (10, 50)
