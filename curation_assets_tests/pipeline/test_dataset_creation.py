"""`ensure_annotator_dataset` creates over REST the dataset the argilla SDK's `rg.Dataset(...).create()` creates.

Differential, on each server kind: the curation and the review settings, one dataset made each way in
the same workspace; the dataset, its fields, questions, vector settings and metadata properties read
back over REST are compared without ids and timestamps. Then the ways the SDK's creation is used
afterwards: records pushed, metadata properties added later, an annotator's view of it.
"""

import argilla as rg
import httpx
import pytest

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.argilla_adapter.dataset_settings import (
    curation_dataset_settings,
    quality_metadata_properties,
    review_dataset_settings,
)
from curation_assets.argilla_adapter.mapping import record_items
from curation_assets.argilla_adapter.rest import Connection
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.logic.quality import compute_quality_signals
from curation_assets_tests.argilla_helpers import annotator_account

pytestmark = pytest.mark.server
ANNOTATOR = "chen"
STAMP = {"curation_project": "creation_test", "curation_source": "file:x.jsonl"}
UNNAMED = {"id", "dataset_id", "inserted_at", "updated_at", "last_activity_at"}


def as_created(argilla: ArgillaClient, dataset_id: str) -> dict:
    """Everything the server tells of a dataset's design, without what names or dates this one instance."""

    def plain(item: dict) -> dict:
        return {key: value for key, value in item.items() if key not in UNNAMED}

    dataset = plain(argilla.request("GET", f"/api/v1/datasets/{dataset_id}"))
    dataset.pop("name")
    return {
        "dataset": dataset,
        **{
            kind: [plain(item) for item in argilla.request("GET", path)["items"]]
            for kind, path in (
                ("fields", f"/api/v1/datasets/{dataset_id}/fields"),
                ("questions", f"/api/v1/datasets/{dataset_id}/questions"),
                ("vectors", f"/api/v1/datasets/{dataset_id}/vectors-settings"),
                ("metadata_properties", f"/api/v1/me/datasets/{dataset_id}/metadata-properties"),
            )
        },
    }


@pytest.mark.parametrize("settings_factory", [curation_dataset_settings, review_dataset_settings])
def test_the_dataset_made_over_rest_is_the_one_the_sdk_makes(argilla_server_each_way, settings_factory):
    server = argilla_server_each_way
    argilla = ArgillaClient(Connection(server.url, server.owner_api_key))
    names = {way: f"creation_{way}_{settings_factory.__name__}" for way in ("rest", "sdk")}
    for name in names.values():
        for existing in argilla.datasets_named(name).values():
            argilla.delete_dataset(existing)

    ours = argilla.ensure_annotator_dataset(ANNOTATOR, names["rest"], settings_factory, metadata=STAMP)
    theirs = rg.Dataset(
        name=names["sdk"], workspace=ANNOTATOR, settings=settings_factory(), client=argilla.sdk
    ).create()
    argilla.stamp_dataset(argilla.datasets_named(names["sdk"])[ANNOTATOR], STAMP)

    assert ours.status == "ready" and ours.workspace == ANNOTATOR and ours.metadata == STAMP
    made_by_us, made_by_sdk = as_created(argilla, ours.id), as_created(argilla, str(theirs.id))
    assert made_by_us == made_by_sdk
    assert len(made_by_us["fields"]) >= 4 and len(made_by_us["questions"]) >= 3
    assert made_by_us["dataset"]["metadata"] == STAMP and made_by_us["dataset"]["status"] == "ready"
    # The same dataset is found, not made again.
    assert argilla.ensure_annotator_dataset(ANNOTATOR, names["rest"], settings_factory, metadata=STAMP) == ours


def test_a_dataset_made_over_rest_takes_records_new_properties_and_its_annotator(argilla_server):
    argilla = ArgillaClient(Connection(argilla_server.url, argilla_server.owner_api_key))
    name = "creation_then_used"
    for existing in argilla.datasets_named(name).values():
        argilla.delete_dataset(existing)

    def without_quality_properties() -> rg.Settings:
        settings = curation_dataset_settings()
        for prop in list(settings.metadata):
            settings.metadata.remove(prop.name)
        return settings

    dataset = argilla.ensure_annotator_dataset(ANNOTATOR, name, without_quality_properties)
    assert argilla.ensure_metadata_properties(dataset, quality_metadata_properties()) == [
        prop.name for prop in quality_metadata_properties()
    ]
    assert argilla.ensure_metadata_properties(dataset, quality_metadata_properties()) == []

    source = load_shipped_dolly_excerpt()
    signals = compute_quality_signals(source)
    sent = argilla.upsert_record_items(
        dataset, record_items(source, signals, argilla.field_names(dataset), argilla.question_ids(dataset))
    )
    assert sent == len(source) == argilla.record_total(dataset.id)

    # The annotator sees it in their own workspace, with its records to answer.
    annotator = {"X-Argilla-Api-Key": annotator_account(argilla_server, ANNOTATOR).api_key}
    mine = httpx.get(f"{argilla_server.url}/api/v1/me/datasets", headers=annotator).raise_for_status().json()
    assert [item["status"] for item in mine["items"] if item["id"] == dataset.id] == ["ready"]
    metrics = httpx.get(f"{argilla_server.url}/api/v1/me/datasets/{dataset.id}/metrics", headers=annotator)
    assert metrics.raise_for_status().json()["responses"] == {
        "total": len(source), "submitted": 0, "discarded": 0, "draft": 0, "pending": len(source),
    }  # fmt: skip


def test_a_server_that_takes_no_metadata_at_creation_gets_the_stamp_afterwards(argilla_server, monkeypatch):
    argilla = ArgillaClient(Connection(argilla_server.url, argilla_server.owner_api_key))
    name = "creation_stamped_later"
    for existing in argilla.datasets_named(name).values():
        argilla.delete_dataset(existing)
    create = ArgillaClient._create_dataset
    # As a server would that ignores `metadata` in the creation's body.
    monkeypatch.setattr(
        ArgillaClient,
        "_create_dataset",
        lambda self, name, workspace, settings, _: create(self, name, workspace, settings, None),
    )

    dataset = argilla.ensure_annotator_dataset(ANNOTATOR, name, curation_dataset_settings, metadata=STAMP)

    assert dataset.metadata == STAMP and argilla.datasets_named(name)[ANNOTATOR].metadata == STAMP
    # Nothing but the SDK's own datasets is kept as one: records go in through it.
    assert isinstance(argilla._sdk_dataset(dataset), rg.Dataset)
