"""Quality signals through the real embedded Argilla: metadata and rule suggestions arrive, flagged records
lead the annotator's queue, and the statistics and the opt-in rule pass use them."""

from pathlib import Path

import argilla as rg
import dagster as dg
import httpx
import pytest

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings, quality_metadata_properties
from curation_assets.argilla_adapter.mapping import ORIGINAL_AGENT, RULE_AGENT, to_argilla_records
from curation_assets.argilla_adapter.rest import Connection
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.quickstart.annotator_client import PENDING_QUEUE_FILTERS, AnnotatorSession
from curation_assets_tests.argilla_helpers import annotator_account
from curation_assets_tests.harness import PLAN, REFRESH, ProjectOnServer, metadata_of

pytestmark = pytest.mark.server
ANNOTATOR = "ana"
# The session server's other tests use other dataset names: this project's dataset is its own.
PROJECT = dict(name="quality_in_argilla", annotation={"annotators": [ANNOTATOR]})


@pytest.fixture(scope="module")
def run(argilla_server, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("quality")
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline = ProjectOnServer(argilla_server, instance, tmp_path, **PROJECT)
        plan = pipeline.materialize(PLAN)
        pipeline.materialize(["annotator_shards"], partition_key=ANNOTATOR)
        yield pipeline, plan.output_for_node(pipeline.node("quality_signals"))


def test_flagged_records_come_first_with_metadata_and_rule_suggestions(run, argilla_server):
    pipeline, signals = run
    priority = dict(zip(signals["id"], signals["priority"]))
    with AnnotatorSession(argilla_server.url, annotator_account(argilla_server, ANNOTATOR).api_key) as session:
        dataset_id = session.dataset_id(pipeline.dataset_name, ANNOTATOR)
        queue, total = session.queue(dataset_id, limit=50)
        assert total == 37
        order = [priority[record.external_id] for record in queue]
        assert order == sorted(order, reverse=True), "the pending queue lists the highest priority first"
        flagged = int((signals["priority"] > 0).sum())
        assert flagged >= 10 and all(value > 0 for value in order[:flagged])

        top = queue[0]  # record 10: the response copies the context, citation markers in both
        assert top.external_id == "10"
        assert "response_copies_context" in top.fields["quality_notes"]
        questions = {question["name"]: question["id"] for question in httpx.get(
            f"{argilla_server.url}/api/v1/datasets/{dataset_id}/questions",
            headers={"X-Argilla-Api-Key": argilla_server.owner_api_key},
        ).json()["items"]}  # fmt: skip
        response_suggestion = top.suggestions[questions["new-response"]]
        assert response_suggestion["agent"] == RULE_AGENT and response_suggestion["score"] == pytest.approx(0.9)
        assert "[13]" in top.fields["response"] and "[13]" not in response_suggestion["value"]
        clean = next(record for record in queue if priority[record.external_id] == 0)
        assert {suggestion["agent"] for suggestion in clean.suggestions.values()} == {ORIGINAL_AGENT}

        # The UI's sort by a metadata property works too (what an annotator uses on a queue filled earlier).
        sorted_body = session.request("POST", 
            f"/api/v1/me/datasets/{dataset_id}/records/search",
            params={"offset": 0, "limit": 50},
            json={"filters": PENDING_QUEUE_FILTERS, "sort": [{"scope": {"entity": "metadata", "metadata_property": "priority"}, "order": "desc"}]},
        )
        by_metadata = [item["record"]["metadata"]["priority"] for item in sorted_body["items"]]
        assert by_metadata == sorted(by_metadata, reverse=True) and by_metadata[0] == order[0]

        flagged_by_metadata = session.request("POST", 
            f"/api/v1/me/datasets/{dataset_id}/records/search",
            params={"offset": 0, "limit": 50},
            json={"filters": {"and": [{"type": "terms", "scope": {"entity": "metadata", "metadata_property": "flags"}, "values": ["citation_markers"]}]}},
        )
        assert flagged_by_metadata["total"] == int(signals["flags"].map(lambda flags: "citation_markers" in flags).sum())

        # The annotator accepts the rule's suggestions on the top record and submits it.
        answers = {name: top.suggestions[questions[name]]["value"] for name in ("new-instruction", "new-input", "new-response")}
        session.respond(top, "submitted", answers)


def test_flag_precision_and_opt_in_rule_pass(run, argilla_server):
    pipeline, signals = run
    # The project's declaration now opts in to the rule pass, as a user would edit its defs.yaml.
    with_rule_fixes = ProjectOnServer(
        argilla_server, pipeline.instance, pipeline.folder, **PROJECT, publish={"apply_rule_fixes_to_unannotated": True}
    )
    result = with_rule_fixes.materialize(REFRESH)
    precision = result.output_for_node(pipeline.node("change_statistics"))["flag_precision"].set_index("flag")
    assert precision.loc["response_copies_context", "reviewed"] == 1
    assert precision.loc["response_copies_context", "changed"] == 1
    assert precision.loc["response_copies_context", "precision"] == 1.0
    statistics = metadata_of(result, pipeline.node("change_statistics"))
    assert "Quality flags" in statistics["report"]
    assert "| response\\_copies\\_context (1) | 1 | ████████████████████ |" in statistics["chart_flag_precision"]
    assert (Path(statistics["charts_folder"]) / "flag_precision.html").exists()

    curated = result.output_for_node(pipeline.node("curated_dolly")).set_index("id")
    assert curated.loc["10", "provenance"] == "human"
    rule_ids = set(curated.index[curated["provenance"] == "rule"])
    assert rule_ids == set(signals.loc[signals["fixable"], "id"]) - {"10"}
    assert "[3]" not in curated.loc["0", "context"] and curated.loc["0", "annotator"] == ""


def test_a_dataset_created_before_the_quality_signals_gets_them_on_the_next_push(argilla_server, run):
    _, signals = run
    argilla = ArgillaClient(Connection(argilla_server.url, argilla_server.owner_api_key))

    def settings_before_quality_signals():
        settings = curation_dataset_settings()
        return rg.Settings(guidelines=settings.guidelines, fields=[f for f in settings.fields if f.name != "quality_notes"],
                           questions=list(settings.questions))  # fmt: skip

    dataset = argilla.ensure_annotator_dataset("bruno", "quality_upgrade", settings_before_quality_signals)
    assert argilla.ensure_metadata_properties(dataset, quality_metadata_properties()) == [
        prop.name for prop in quality_metadata_properties()
    ]
    assert argilla.ensure_metadata_properties(dataset, quality_metadata_properties()) == [], "idempotent"
    rows = load_shipped_dolly_excerpt().head(3)
    argilla.upsert_records(dataset, to_argilla_records(rows, signals, argilla.field_names(dataset)))
    stored = {record["external_id"]: record for record in argilla.iter_records(dataset.id)}
    assert stored["0"]["metadata"]["flags"] == ["citation_markers"] and "quality_notes" not in stored["0"]["fields"]
