"""The set-based bulk write (local_argilla/bulk_write.py) against argilla-server's own write path, field by field.

The same pushes go to two servers: the embedded default, where `PUT .../records/bulk` takes the
set-based path, and one with every speedup off, which runs argilla-server as shipped. Then
everything either server tells or holds is compared: each bulk answer, every record read back
with its suggestions, responses and vectors, searches, progress and metadata metrics, and the
rows in both SQLite files. Ids and timestamps differ by nature: ids are compared through what
they name (the record's external id, the question's name, ...), timestamps through what the
server's semantics make of them (new records have `updated_at == inserted_at`, an unchanged
re-push moves nothing, an upserted suggestion keeps its id and `inserted_at`, ...).

The pushes cover what the pipeline sends (`to_argilla_records` over the shipped Dolly excerpt
with its quality signals: notes field, suggestions with agent and score, eight metadata values),
a second push that changes some records, leaves others alone and adds new ones, records an
annotator has answered, raw shapes the client does not produce (fields or metadata left out,
metadata null, no external id), every question type's suggestions (list scores, span offsets),
extra metadata, and the shapes the set-based path hands back to the server's own path
(vectors, responses logged by the owner).
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import argilla as rg
import httpx
import pandas as pd
import pytest

from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets.argilla_adapter.mapping import to_argilla_records
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.local_argilla.config import BULK_WRITE_PATH_HEADER, LISTING_PATH_HEADER
from curation_assets.logic.quality import compute_quality_signals, review_order
from curation_assets_tests.argilla_helpers import annotator_account, owner_client

pytestmark = pytest.mark.server

WORKSPACE = "bulk-write-differential"
UNKNOWN_QUESTION_ID = "00000000-0000-4000-8000-000000000000"
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?")


# The pushes of the sequence, and whether the set-based path covers them.
SEQUENCE = {
    "pipeline push": True,
    "pipeline second push": True,
    "pipeline raw shapes": True,
    "shapes with vectors": False,  # vectors: the server's own path
    "shapes again": True,
    "response on behalf": False,  # responses: the server's own path
}


def _shapes_settings() -> rg.Settings:
    return rg.Settings(
        fields=[rg.TextField(name="text"), rg.TextField(name="notes", required=False)],
        questions=[
            rg.LabelQuestion(name="label", labels=["pos", "neg"]),
            rg.MultiLabelQuestion(name="topics", labels=["a", "b", "c"], required=False),
            rg.RatingQuestion(name="rating", values=[1, 2, 3], required=False),
            rg.SpanQuestion(name="span", field="text", labels=["PER", "ORG"], required=False),
            rg.TextQuestion(name="comment", required=False),
        ],
        metadata=[
            rg.TermsMetadataProperty("lang", options=["en", "fr", "de"]),
            rg.IntegerMetadataProperty("length", min=0, max=1000),
            rg.FloatMetadataProperty("quality", min=0.0, max=1.0),
        ],
        vectors=[rg.VectorField(name="emb", dimensions=3)],
        allow_extra_metadata=True,
    )


def _shapes_record(external_id: str, text: str, label: str, rating: int, vector: list | None = None) -> rg.Record:
    return rg.Record(
        id=external_id,
        fields={"text": text},
        metadata={"lang": ["en", "fr"], "length": len(text), "quality": 0.5, "source": "differential"},
        vectors={"emb": vector} if vector else {},
        suggestions=[
            rg.Suggestion("label", label, score=0.9, agent="model-a", type="model"),
            rg.Suggestion("topics", ["a", "b"], score=[0.8, 0.3], agent="model-a"),
            rg.Suggestion("rating", rating, score=0.5, agent="model-b"),
            rg.Suggestion("span", [{"label": "PER", "start": 0, "end": 3}], score=[0.7], agent="model-c"),
            rg.Suggestion("comment", f"about {text}", type="human"),
        ],
    )


def _edited(frame: pd.DataFrame) -> pd.DataFrame:
    """The excerpt as a second push sees it: five records edited at the source, three new ones."""
    edited = frame.copy()
    edited.loc[edited.index[:5], "instruction"] = edited["instruction"].iloc[:5] + " [1]"
    new = frame.iloc[:3].assign(id=["new-1", "new-2", "new-3"], response="A new response.")
    return pd.concat([edited, new], ignore_index=True)


@dataclass
class Side:
    """One server and everything it answered during the sequence."""

    server: Any
    client: rg.Argilla = None
    datasets: dict[str, rg.Dataset] = field(default_factory=dict)
    answers: list[dict] = field(default_factory=list)
    snapshots: dict[str, dict] = field(default_factory=dict)
    reads: dict[str, Any] = field(default_factory=dict)

    @property
    def owner(self) -> dict:
        return {"X-Argilla-Api-Key": self.server.owner_api_key}

    def question_id(self, dataset: str, name: str) -> str:
        return str(next(question.id for question in self.datasets[dataset].settings.questions if question.name == name))

    def put_bulk(self, step: str, dataset: str, items: list[dict]) -> httpx.Response:
        answer = httpx.put(
            f"{self.server.url}/api/v1/datasets/{self.datasets[dataset].id}/records/bulk",
            headers=self.owner,
            json={"items": items},
            timeout=60,
        )
        self._keep(step, answer)
        return answer

    def log(self, step: str, dataset: str, records: list[rg.Record], batch_size: int = 16) -> None:
        """Logs as the pipeline does (the argilla client), keeping the raw answers of its bulk requests."""
        hooks = self.client.api.http_client.event_hooks
        hooks["response"] = [lambda answer: self._keep(step, answer) if answer.request.method == "PUT" else None]
        try:
            self.datasets[dataset].records.log(records, batch_size=batch_size)
        finally:
            hooks["response"] = []

    def _keep(self, step: str, answer: httpx.Response) -> None:
        answer.read()
        self.answers.append(
            {
                "step": step,
                "status": answer.status_code,
                "body": answer.json(),
                "set_based": BULK_WRITE_PATH_HEADER in answer.headers,
            }
        )

    def listing(self, dataset: str) -> list[dict]:
        answer = httpx.get(
            f"{self.server.url}/api/v1/datasets/{self.datasets[dataset].id}/records",
            headers=self.owner,
            params={"include": ["responses", "suggestions", "vectors"], "limit": 1000},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    def snapshot(self, step: str) -> None:
        self.snapshots[step] = {name: self.listing(name) for name in self.datasets}


def _stored_by_external_id(side: Side, dataset: str) -> dict[str, dict]:
    return {record["external_id"]: record for record in side.listing(dataset)}


def _run_sequence(server) -> Side:
    side = Side(server, owner_client(server))
    workspace = rg.Workspace(name=WORKSPACE, client=side.client).create()
    for name in ("ana", "bruno"):
        workspace.add_user(side.client.users(username=name))
    for name, settings in (("pipeline", curation_dataset_settings()), ("shapes", _shapes_settings())):
        side.datasets[name] = rg.Dataset(name=name, workspace=workspace, settings=settings, client=side.client).create()

    # What the pipeline pushes, in its order, in several requests.
    excerpt = load_shipped_dolly_excerpt()
    signals = compute_quality_signals(excerpt)
    side.log("pipeline push", "pipeline", to_argilla_records(review_order(excerpt, signals), signals))
    side.snapshot("pipeline push")

    # An annotator answers two records (one submitted: the record completes; one draft).
    stored = _stored_by_external_id(side, "pipeline")
    ana = {"X-Argilla-Api-Key": annotator_account(server, "ana").api_key}
    for external_id, status in ((excerpt["id"].iloc[1], "submitted"), (excerpt["id"].iloc[2], "draft")):
        values = {"new-instruction": {"value": "Rewritten."}, "new-response": {"value": "Rewritten too."}}
        answer = httpx.post(
            f"{server.url}/api/v1/records/{stored[external_id]['id']}/responses",
            headers=ana,
            json={"values": values, "status": status},
        )
        assert answer.status_code == 201, answer.text
    time.sleep(0.01)

    # The second push: edited records (their signals, notes and suggestions follow), untouched ones, new ones.
    edited = _edited(excerpt)
    edited_signals = compute_quality_signals(edited)
    side.log(
        "pipeline second push", "pipeline", to_argilla_records(review_order(edited, edited_signals), edited_signals)
    )
    side.snapshot("pipeline second push")

    # Shapes the client does not send: fields or metadata left out, metadata null, no external id,
    # the same content again, a suggestion for one question only (the others stay).
    stored = _stored_by_external_id(side, "pipeline")
    ids = list(excerpt["id"])
    unchanged = stored[ids[10]]
    side.put_bulk(
        "pipeline raw shapes",
        "pipeline",
        [
            {"external_id": ids[5], "suggestions": [
                {"question_id": side.question_id("pipeline", "new-response"), "value": "Only this one.", "type": "human"}]},
            {"external_id": ids[6], "metadata": None},
            {"external_id": ids[7], "fields": {**stored[ids[7]]["fields"], "context": "A context now."}},
            {"external_id": ids[10], "fields": unchanged["fields"], "metadata": unchanged["metadata"]},
            {"fields": {"category": "open_qa", "instruction": "No external id?", "response": "None."}},
            {"external_id": "no-metadata", "fields": {"category": "open_qa", "instruction": "Bare?", "response": "Yes."}},
        ],
    )  # fmt: skip
    side.snapshot("pipeline raw shapes")

    # Every question type; vectors send the first push down the server's own path.
    side.log("shapes with vectors", "shapes", [
        _shapes_record("s1", "Ana works at Acme.", "pos", 1, [1.0, 0.0, 0.0]),
        _shapes_record("s2", "Bob sleeps.", "neg", 2, [0.0, 1.0, 0.0]),
    ])  # fmt: skip
    side.snapshot("shapes with vectors")
    side.log("shapes again", "shapes", [
        _shapes_record("s1", "Ana works at Acme.", "neg", 3),
        _shapes_record("s2", "Bob sleeps all day.", "neg", 2),
        _shapes_record("s3", "Cyd reads.", "pos", 1),
    ])  # fmt: skip
    side.snapshot("shapes again")

    # The owner logs a response on behalf of an annotator: the server's own path.
    bruno = side.client.users(username="bruno")
    with_response = _shapes_record("s4", "Dee writes.", "pos", 3)
    with_response.responses.add(rg.Response("label", "pos", user_id=bruno.id, status="submitted"))
    side.log("response on behalf", "shapes", [with_response])
    side.snapshot("response on behalf")

    side.reads = _reads(side)
    side.reads["rows"] = _database_rows(side)
    return side


def _reads(side: Side) -> dict:
    """Search, progress and metrics answers over the pushed datasets."""
    pipeline, shapes = (str(side.datasets[name].id) for name in ("pipeline", "shapes"))
    ana = {"X-Argilla-Api-Key": annotator_account(side.server, "ana").api_key}

    def search(dataset_id: str, body: dict, headers: dict, path: str = "datasets") -> list:
        answer = httpx.post(
            f"{side.server.url}/api/v1/{path}/{dataset_id}/records/search",
            headers=headers,
            json=body,
            params={"limit": 100, "include": ["responses", "suggestions"]},
        )
        assert answer.status_code == 200, answer.text
        return [(item["record"]["external_id"], item["record"]["status"]) for item in answer.json()["items"]]

    def terms(scope: dict, *values) -> dict:
        return {"filters": {"and": [{"type": "terms", "scope": scope, "values": list(values)}]}}

    def get(path: str, headers: dict | None = None) -> Any:
        answer = httpx.get(f"{side.server.url}/api/v1/{path}", headers=headers or side.owner)
        assert answer.status_code == 200, answer.text
        return answer.json()

    rule_agent = {"entity": "suggestion", "question": "new-response", "property": "agent"}
    priority = {"entity": "metadata", "metadata_property": "priority"}
    pending = terms({"entity": "response", "property": "status"}, "pending")
    reads = {
        "all": search(pipeline, {}, side.owner),
        "suggested by the rules": search(pipeline, terms(rule_agent, "quality-rules"), side.owner),
        "human suggestions": search(pipeline, terms({**rule_agent, "property": "type"}, "human"), side.owner),
        "by priority": search(pipeline, {"sort": [{"scope": priority, "order": "desc"}]}, side.owner),
        "flagged citation markers": search(pipeline, terms({"entity": "metadata", "metadata_property": "flags"}, "citation_markers"), side.owner),
        "priority at least 1": search(pipeline, {"filters": {"and": [{"type": "range", "scope": priority, "ge": 1}]}}, side.owner),
        "text": search(pipeline, {"query": {"text": {"q": "[1]"}}}, side.owner),
        "ana's queue": search(pipeline, pending, ana, path="me/datasets"),
        "shapes by label suggestion": search(shapes, terms({"entity": "suggestion", "question": "label"}, "neg"), side.owner),
        "shapes by span score": search(shapes, {"sort": [{"scope": {"entity": "suggestion", "question": "span", "property": "score"}, "order": "asc"}]}, side.owner),
        "pipeline progress": get(f"datasets/{pipeline}/progress"),
        "shapes progress": get(f"datasets/{shapes}/progress"),
        "ana's progress": get(f"me/datasets/{pipeline}/metrics", ana),
    }  # fmt: skip
    for dataset_id in (pipeline, shapes):
        for prop in get(f"me/datasets/{dataset_id}/metadata-properties")["items"]:
            reads[f"metrics of {prop['name']}"] = get(f"metadata-properties/{prop['id']}/metrics")
    return reads


def _database_rows(side: Side) -> dict[str, list]:
    """The rows of the workspace's records, suggestions, responses and vectors, in the order they were written."""
    database = sqlite3.connect(f"file:{side.server.data_dir / 'argilla.db'}?mode=ro", uri=True)
    in_workspace = "records.dataset_id IN (SELECT datasets.id FROM datasets JOIN workspaces ON workspaces.id = datasets.workspace_id WHERE workspaces.name = ?)"
    try:
        return {
            table: database.execute(f"SELECT {table}.* FROM {table} {join} WHERE {in_workspace} ORDER BY {table}.rowid", (WORKSPACE,)).fetchall()
            for table, join in (
                ("records", ""),
                ("suggestions", "JOIN records ON records.id = suggestions.record_id"),
                ("responses", "JOIN records ON records.id = responses.record_id"),
                ("vectors", "JOIN records ON records.id = vectors.record_id"),
            )
        }  # fmt: skip
    finally:
        database.close()


class Names:
    """Every id a server handed out, as what it names: the same on both servers."""

    def __init__(self, side: Side):
        self.labels: dict[str, str] = {}
        for user in httpx.get(f"{side.server.url}/api/v1/users", headers=side.owner).json()["items"]:
            self._name(user["id"], f"user {user['username']}")
        for dataset_name, dataset in side.datasets.items():
            self._name(dataset.id, f"dataset {dataset_name}")
            for question in dataset.settings.questions:
                self._name(question.id, f"question {question.name}")
            for position, record in enumerate(side.listing(dataset_name)):
                record_label = f"record {record['external_id'] or f'#{position}'}"
                self._name(record["id"], record_label)
                for suggestion in record["suggestions"]:
                    self._name(
                        suggestion["id"], f"suggestion of {record_label} for {self.labels[suggestion['question_id']]}"
                    )
                for response in record["responses"]:
                    self._name(response["id"], f"response of {record_label} by {self.labels[response['user_id']]}")

    def _name(self, identifier, label: str) -> None:
        # The API spells UUIDs with dashes, SQLite stores them as 32 hex digits.
        self.labels[str(identifier)] = self.labels[str(identifier).replace("-", "")] = label

    def __call__(self, value: Any) -> Any:
        """The value with ids replaced by their names and timestamps by a placeholder."""
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(item) for item in value]
        if isinstance(value, str):
            value = UUID.sub(lambda match: f"<{self.labels.get(match.group(0), 'unknown id')}>", value)
            return TIMESTAMP.sub("<time>", value)
        return value


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _timestamp_facts(side: Side, names: Names) -> dict:
    """Per snapshot, record, suggestion and response: what moved since the previous snapshot, and whether updated_at is
    inserted_at."""
    facts, previous = {}, {}
    for step, listings in side.snapshots.items():
        for dataset, records in listings.items():
            for position, record in enumerate(records):
                label = f"{dataset} {record['external_id'] or f'#{position}'}"
                objects = {label: record}
                objects.update({f"{label} suggestion {names(s['question_id'])}": s for s in record["suggestions"]})
                objects.update({f"{label} response {names(r['user_id'])}": r for r in record["responses"]})
                for key, item in objects.items():
                    before = previous.get(key)
                    facts[(step, key)] = {
                        "updated_at == inserted_at": item["updated_at"] == item["inserted_at"],
                        "updated_at <= inserted_at": _time(item["updated_at"]) <= _time(item["inserted_at"]),
                        "id kept": before is None or before["id"] == item["id"],
                        "inserted_at moved": before is not None and before["inserted_at"] != item["inserted_at"],
                        "updated_at moved": before is not None and before["updated_at"] != item["updated_at"],
                    }
                    previous[key] = item
    return facts


@pytest.fixture(scope="module")
def both(argilla_server, argilla_server_without_speedups) -> dict[str, Side]:
    return {"set-based": _run_sequence(argilla_server), "upstream": _run_sequence(argilla_server_without_speedups)}


@pytest.fixture(scope="module")
def names(both) -> dict[str, Names]:
    return {name: Names(side) for name, side in both.items()}


def _compare(both, names, value_of: Callable[[Side], Any]) -> tuple[Any, Any]:
    return tuple(names[name](value_of(both[name])) for name in ("set-based", "upstream"))


def _sequence_answers(side: Side) -> list[dict]:
    return [answer for answer in side.answers if answer["step"] in SEQUENCE]


def test_the_set_based_path_wrote_what_it_covers_and_handed_the_rest_back(both):
    assert {answer["step"]: answer["set_based"] for answer in _sequence_answers(both["set-based"])} == SEQUENCE
    assert not any(answer["set_based"] for answer in _sequence_answers(both["upstream"]))


def test_bulk_answers_are_the_same(both, names):
    ours, theirs = _compare(
        both, names, lambda side: [{**answer, "set_based": None} for answer in _sequence_answers(side)]
    )
    assert len(ours) == len(theirs) == 10  # 37 and 40 records in requests of 16: three each; one each for the rest
    for our_answer, their_answer in zip(ours, theirs):
        assert our_answer == their_answer, our_answer["step"]
    assert all(answer["status"] == 200 for answer in ours)


@pytest.mark.parametrize("step", list(SEQUENCE))
def test_records_read_back_are_the_same(both, names, step):
    ours, theirs = _compare(both, names, lambda side: side.snapshots[step])
    assert ours == theirs
    # Not vacuous: the records are there with what was pushed.
    assert len(ours["pipeline"]) >= 37
    assert all(record["suggestions"] for record in ours["pipeline"][:37])


def test_timestamps_follow_the_same_rules(both, names):
    ours, theirs = (_timestamp_facts(both[name], names[name]) for name in ("set-based", "upstream"))
    assert list(ours) == list(theirs)
    assert {key: (ours[key], theirs[key]) for key in ours if ours[key] != theirs[key]} == {}
    # The rules themselves, on records that show them.
    ids = list(load_shipped_dolly_excerpt()["id"])
    second = {key: fact for (step, key), fact in ours.items() if step == "pipeline second push"}
    assert second["pipeline new-1"]["updated_at == inserted_at"]
    assert second[f"pipeline {ids[3]}"]["updated_at moved"] and not second[f"pipeline {ids[3]}"]["inserted_at moved"]
    edited_suggestion = second[f"pipeline {ids[3]} suggestion <question new-instruction>"]
    assert (
        edited_suggestion["id kept"]
        and edited_suggestion["updated_at moved"]
        and not edited_suggestion["inserted_at moved"]
    )
    shapes = {key: fact for (step, key), fact in ours.items() if step == "pipeline raw shapes"}
    assert not shapes[f"pipeline {ids[10]}"]["updated_at moved"]  # the same fields and metadata again


def test_search_progress_and_metrics_answer_the_same(both, names):
    ours, theirs = _compare(
        both, names, lambda side: {name: read for name, read in side.reads.items() if name != "rows"}
    )
    assert ours == theirs
    assert ours["suggested by the rules"] and ours["ana's queue"] and ours["pipeline progress"]["total"] == 37 + 3 + 2


def test_database_rows_are_the_same(both, names):
    ours, theirs = _compare(both, names, lambda side: side.reads["rows"])
    assert ours == theirs
    assert len(ours["records"]) == 37 + 3 + 2 + 4
    assert len(ours["vectors"]) == 2 and len(ours["responses"]) == 3


def test_a_repeated_push_duplicates_nothing_and_moves_only_suggestion_updates(both):
    """The same records twice: no duplicate, records untouched; as the server does, upserted suggestions get a new
    updated_at."""
    excerpt = load_shipped_dolly_excerpt()
    signals = compute_quality_signals(excerpt)
    for name, side in both.items():
        workspace = side.client.workspaces(WORKSPACE)
        side.datasets["repeat"] = rg.Dataset(
            name="repeat", workspace=workspace, settings=curation_dataset_settings(), client=side.client
        ).create()
        side.log("repeat", "repeat", to_argilla_records(review_order(excerpt, signals), signals), batch_size=500)
        before = side.listing("repeat")
        side.log("repeat", "repeat", to_argilla_records(review_order(excerpt, signals), signals), batch_size=500)
        after = side.listing("repeat")
        assert len(after) == len(excerpt)
        assert [{**record, "suggestions": None} for record in after] == [
            {**record, "suggestions": None} for record in before
        ], name
        for old, new in zip(before, after):
            assert [(s["id"], s["inserted_at"], s["value"]) for s in old["suggestions"]] == [
                (s["id"], s["inserted_at"], s["value"]) for s in new["suggestions"]
            ]
            assert all(o["updated_at"] != n["updated_at"] for o, n in zip(old["suggestions"], new["suggestions"]))
        assert side.answers[-1]["set_based"] is (name == "set-based")


# -- invalid input: the same status and message from both paths -------------------------------------


def _valid_item(side: Side, external_id: str) -> dict:
    return {
        "external_id": external_id,
        "fields": {"category": "open_qa", "instruction": "Why?", "response": "Because."},
        "metadata": {"priority": 1, "flags": ["short_response"]},
        "suggestions": [{"question_id": side.question_id("rejects", "new-instruction"), "value": "Why?", "agent": "original-text", "score": 1.0}],
    }  # fmt: skip


# case: (the invalid item, made from a valid one; what the message says)
INVALID_ITEMS: dict[str, tuple[Callable[[Side, dict], dict], str]] = {
    "integer metadata given text": (lambda side, item: {**item, "metadata": {"priority": "high"}}, "'high' is not an integer."),
    "integer metadata under its minimum": (lambda side, item: {**item, "metadata": {"priority": -1}}, "'-1' is less than the minimum value of '0'."),
    "term not among the options": (lambda side, item: {**item, "metadata": {"flags": ["not-a-flag"]}}, "'not-a-flag' is not an allowed term."),
    "unknown metadata property": (lambda side, item: {**item, "metadata": {"colour": "red"}}, "'colour' metadata property does not exists"),
    "unknown field": (lambda side, item: {**item, "fields": {**item["fields"], "colour": "red"}}, "non configured fields: ['colour']"),
    "required field missing": (lambda side, item: {**item, "fields": {"category": "open_qa", "response": "Because."}}, "missing required value for field: 'instruction'"),
    "no fields": (lambda side, item: {**item, "fields": {}}, "fields cannot be empty"),
    "text field given an object": (lambda side, item: {**item, "fields": {**item["fields"], "instruction": {"a": 1}}}, "text field 'instruction' value must be a string"),
    "suggestion for an unknown question": (lambda side, item: {**item, "suggestions": [{"question_id": UNKNOWN_QUESTION_ID, "value": "x"}]}, "question id=<unknown id> does not exists"),
    "suggestion of the wrong type": (lambda side, item: {**item, "suggestions": [{**item["suggestions"][0], "value": 5}]}, "text question expects a text value"),
    "two suggestions for one question": (lambda side, item: {**item, "suggestions": item["suggestions"] * 2}, "found duplicate suggestions question IDs"),
    "score out of range": (lambda side, item: {**item, "suggestions": [{**item["suggestions"][0], "score": 1.5}]}, "score must be between 0 and 1"),
    "stored record given invalid metadata": (lambda side, item: {**item, "external_id": "valid-before", "metadata": {"priority": 2.5}}, "'2.5' is not an integer."),
    "stored record given fields without the required ones": (lambda side, item: {"external_id": "valid-before", "fields": {"colour": "red"}}, "missing required value for field: 'category'"),
}  # fmt: skip


@pytest.fixture(scope="module")
def rejecting(both) -> dict[str, Side]:
    """A dataset per server holding one valid record, for the invalid pushes."""
    for side in both.values():
        # The pipeline's settings allow extra metadata (the display marker); refused here, argilla's default, so that
        # an unknown metadata property is checked to be rejected alike.
        settings = curation_dataset_settings()
        settings.allow_extra_metadata = False
        workspace = side.client.workspaces(WORKSPACE)
        side.datasets["rejects"] = rg.Dataset(
            name="rejects", workspace=workspace, settings=settings, client=side.client
        ).create()
        assert side.put_bulk("valid before", "rejects", [_valid_item(side, "valid-before")]).status_code == 200
    return both


@pytest.mark.parametrize("case", list(INVALID_ITEMS))
def test_invalid_input_is_rejected_alike(rejecting, names, case):
    answers = {}
    for name, side in rejecting.items():
        before = side.listing("rejects")
        make_invalid, _ = INVALID_ITEMS[case]
        answer = side.put_bulk(
            case, "rejects", [_valid_item(side, "valid-1"), make_invalid(side, _valid_item(side, "invalid-1"))]
        )
        answers[name] = (answer.status_code, names[name](answer.json()))
        assert side.listing("rejects") == before, f"{name} wrote part of a rejected batch"
    assert answers["set-based"] == answers["upstream"]
    status, body = answers["set-based"]
    assert status == 422
    # The server's own messages: which record and what is wrong with it, or the request schema's errors.
    detail = body["detail"]
    if isinstance(detail, str):
        assert detail.startswith("Record at position 1 is not valid because") and INVALID_ITEMS[case][1] in detail
    else:
        assert INVALID_ITEMS[case][1] in _schema_error(detail)


def _schema_error(detail: dict) -> str:
    return detail["params"]["errors"][0]["msg"]


def test_an_over_long_batch_is_rejected_alike(rejecting):
    answers = {}
    for name, side in rejecting.items():
        items = [_valid_item(side, f"long-{index}") for index in range(501)]
        answer = side.put_bulk("over-long batch", "rejects", items)
        answers[name] = (answer.status_code, _schema_error(answer.json()["detail"]))
    assert (
        answers["set-based"]
        == answers["upstream"]
        == (422, "List should have at most 500 items after validation, not 501")
    )


@pytest.mark.parametrize(
    "case, suggestion",
    [
        ("label not among the options", {"question": "label", "value": "maybe"}),
        ("rating not among the values", {"question": "rating", "value": 7}),
        ("span beyond the text", {"question": "span", "value": [{"label": "PER", "start": 0, "end": 40}]}),
        ("span labels unknown", {"question": "span", "value": [{"label": "LOC", "start": 0, "end": 2}]}),
        (
            "multi-label with a list score of another length",
            {"question": "topics", "value": ["a"], "score": [0.1, 0.2]},
        ),
    ],
)
def test_invalid_suggestions_of_every_question_type_are_rejected_alike(rejecting, names, case, suggestion):
    answers = {}
    for name, side in rejecting.items():
        item = {"external_id": "s1", "suggestions": [
            {"question_id": side.question_id("shapes", suggestion["question"]), "value": suggestion["value"], **({"score": suggestion["score"]} if "score" in suggestion else {})}]}  # fmt: skip
        answer = side.put_bulk(case, "shapes", [item])
        answers[name] = (answer.status_code, names[name](answer.json()))
    assert answers["set-based"] == answers["upstream"]
    assert answers["set-based"][0] == 422


def test_span_suggestions_of_a_stored_record_are_checked_against_its_stored_text(rejecting, names):
    """As the server does: a span in the new, longer text of record s2 is out of range of the stored text."""
    answers = {}
    for name, side in rejecting.items():
        stored_length = len(_stored_by_external_id(side, "shapes")["s2"]["fields"]["text"])
        item = {"external_id": "s2", "fields": {"text": "Bob sleeps all day long, every day."}, "suggestions": [
            {"question_id": side.question_id("shapes", "span"), "value": [{"label": "PER", "start": 0, "end": stored_length + 5}]}]}  # fmt: skip
        answer = side.put_bulk("span against stored text", "shapes", [item])
        answers[name] = (answer.status_code, names[name](answer.json()))
    assert answers["set-based"] == answers["upstream"]
    assert answers["set-based"][0] == 422


# -- the record listing (local_argilla/record_listing.py): the same pages as the server's own handler ---------------

LISTING_INCLUDES = {
    "nothing": None,
    "responses (the pipeline's read)": ["responses"],
    "suggestions": ["suggestions"],
    "responses and suggestions": ["responses", "suggestions"],
    "vectors (the server's own path)": ["responses", "suggestions", "vectors"],
}


def _listing_pages(side: Side, dataset: str, include: list[str] | None, limit: int) -> tuple[list[dict], set]:
    """Every page of the dataset's listing, and which path answered each (the header names the rows path)."""
    pages, paths, offset = [], set(), 0
    while True:
        answer = httpx.get(
            f"{side.server.url}/api/v1/datasets/{side.datasets[dataset].id}/records",
            headers=side.owner,
            params={**({"include": include} if include else {}), "offset": offset, "limit": limit},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        paths.add(answer.headers.get(LISTING_PATH_HEADER))
        if len(answer.json()["items"]) < limit:
            return pages, paths
        offset += limit


@pytest.fixture(scope="module")
def listed(both) -> dict[str, Side]:
    """A dataset of its own on each side: pipeline records, one submitted, one drafted, one discarded without values."""
    excerpt = load_shipped_dolly_excerpt().head(12)
    signals = compute_quality_signals(excerpt)
    for side in both.values():
        workspace = side.client.workspaces(WORKSPACE)
        side.datasets["listing"] = rg.Dataset(
            name="listing", workspace=workspace, settings=curation_dataset_settings(), client=side.client
        ).create()
        side.log("listing", "listing", to_argilla_records(review_order(excerpt, signals), signals))
        stored = _stored_by_external_id(side, "listing")
        ana = {"X-Argilla-Api-Key": annotator_account(side.server, "ana").api_key}
        for external_id, body in (
            (
                excerpt["id"].iloc[0],
                {
                    "values": {name: {"value": "Better."} for name in ("new-instruction", "new-input", "new-response")},
                    "status": "submitted",
                },
            ),
            (excerpt["id"].iloc[1], {"values": {"new-instruction": {"value": "Half."}}, "status": "draft"}),
            (excerpt["id"].iloc[2], {"status": "discarded"}),
        ):
            answer = httpx.post(
                f"{side.server.url}/api/v1/records/{stored[external_id]['id']}/responses", headers=ana, json=body
            )
            assert answer.status_code == 201, answer.text
    return both


@pytest.mark.parametrize("include", list(LISTING_INCLUDES))
@pytest.mark.parametrize("dataset", ["listing", "pipeline", "shapes"])
def test_record_listing_pages_answer_the_same(listed, dataset, include):
    names = {name: Names(side) for name, side in listed.items()}
    (our_pages, our_paths), (their_pages, their_paths) = (
        _listing_pages(listed[name], dataset, LISTING_INCLUDES[include], limit=3) for name in names
    )
    assert names["set-based"](our_pages) == names["upstream"](their_pages)
    assert our_paths == ({None} if "vectors" in include else {"rows"}) and their_paths == {None}
    # Not vacuous: several pages, each with the total; responses of every status when included.
    assert len(our_pages) >= 2 and all(page["total"] == our_pages[0]["total"] for page in our_pages)
    records = [record for page in our_pages for record in page["items"]]
    assert len(records) == our_pages[0]["total"] and len({record["id"] for record in records}) == len(records)
    if dataset == "listing" and "responses" in (LISTING_INCLUDES[include] or []):
        assert {response["status"] for record in records for response in record["responses"]} == {
            "submitted",
            "draft",
            "discarded",
        }
    if LISTING_INCLUDES[include] is None:
        assert not any({"responses", "suggestions", "vectors"} & set(record) for record in records)
