"""Quality signals through the real embedded Argilla: metadata and rule suggestions arrive, flagged records
lead the annotator's queue, and the statistics and the opt-in rule pass use them."""

from pathlib import Path

import argilla as rg
import httpx
import pytest

from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings, quality_metadata_properties
from curation_assets.argilla_adapter.mapping import ORIGINAL_AGENT, RULE_AGENT, suggestions_for
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.logic.inert_display import DISPLAY_MARKER, display_copy, exact_fields
from curation_assets.logic.vocabulary import TEXT_FIELDS
from curation_assets.quickstart.annotator_client import PENDING_QUEUE_FILTERS, AnnotatorSession
from curation_assets_tests.argilla_helpers import annotator_account
from curation_assets_tests.harness import PLAN, REFRESH, ProjectOnServer, metadata_of
from curation_assets_tests.markdown_render import render_markdown
from curation_assets_tests.reliability.harness import submit

pytestmark = pytest.mark.server
ANNOTATOR = "ana"


def pushed(argilla_server, instance, folder, name: str, **settings):
    """A project of its own on the session's server (its own dataset), planned and pushed to ana: (pipeline, signals)."""
    pipeline = ProjectOnServer(
        argilla_server, instance, folder, name=name, annotation={"annotators": [ANNOTATOR]}, **settings
    )
    for dataset in pipeline.datasets().values():
        pipeline.argilla.delete_dataset(dataset)
    plan = pipeline.materialize(PLAN)
    pipeline.materialize(["annotator_shards"], partition_key=ANNOTATOR)
    return pipeline, plan.output_for_node(pipeline.node("quality_signals"))


def questions_of(argilla_server, dataset_id: str) -> dict[str, str]:
    return {question["name"]: question["id"] for question in httpx.get(
        f"{argilla_server.url}/api/v1/datasets/{dataset_id}/questions",
        headers={"X-Argilla-Api-Key": argilla_server.owner_api_key},
    ).json()["items"]}  # fmt: skip


def test_flagged_records_come_first_with_metadata_and_rule_suggestions(argilla_server, instance, tmp_path):
    pipeline, signals = pushed(argilla_server, instance, tmp_path, "quality_queue")
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
        questions = questions_of(argilla_server, dataset_id)
        response_suggestion = top.suggestions[questions["new-response"]]
        assert response_suggestion["agent"] == RULE_AGENT and response_suggestion["score"] == pytest.approx(0.9)
        assert "[13]" in top.fields["response"] and "[13]" not in response_suggestion["value"]
        clean = next(record for record in queue if priority[record.external_id] == 0)
        assert {suggestion["agent"] for suggestion in clean.suggestions.values()} == {ORIGINAL_AGENT}

        # The UI's sort by a metadata property works too (what an annotator uses on a queue filled earlier).
        sorted_body = session.request(
            "POST",
            f"/api/v1/me/datasets/{dataset_id}/records/search",
            params={"offset": 0, "limit": 50},
            json={
                "filters": PENDING_QUEUE_FILTERS,
                "sort": [{"scope": {"entity": "metadata", "metadata_property": "priority"}, "order": "desc"}],
            },
        )
        by_metadata = [item["record"]["metadata"]["priority"] for item in sorted_body["items"]]
        assert by_metadata == sorted(by_metadata, reverse=True) and by_metadata[0] == order[0]

        flagged_by_metadata = session.request(
            "POST",
            f"/api/v1/me/datasets/{dataset_id}/records/search",
            params={"offset": 0, "limit": 50},
            json={
                "filters": {
                    "and": [
                        {
                            "type": "terms",
                            "scope": {"entity": "metadata", "metadata_property": "flags"},
                            "values": ["citation_markers"],
                        }
                    ]
                }
            },
        )
        assert flagged_by_metadata["total"] == int(
            signals["flags"].map(lambda flags: "citation_markers" in flags).sum()
        )


def test_flag_precision_and_opt_in_rule_pass(argilla_server, instance, tmp_path):
    pipeline, signals = pushed(argilla_server, instance, tmp_path, "quality_precision")
    # The annotator accepts the rule's suggestions on the top record (10: flagged, a rule cleaned it) and submits it.
    with AnnotatorSession(argilla_server.url, annotator_account(argilla_server, ANNOTATOR).api_key) as session:
        dataset_id = session.dataset_id(pipeline.dataset_name, ANNOTATOR)
        queue, _ = session.queue(dataset_id, limit=1)
        (top,) = queue
        assert top.external_id == "10"
        questions = questions_of(argilla_server, dataset_id)
        answers = {
            name: top.suggestions[questions[name]]["value"] for name in ("new-instruction", "new-input", "new-response")
        }
        session.respond(top, "submitted", answers)
    # The project's declaration now opts in to the rule pass, as a user would edit its defs.yaml.
    with_rule_fixes = ProjectOnServer(
        argilla_server, instance, tmp_path, name="quality_precision", annotation={"annotators": [ANNOTATOR]},
        publish={"apply_rule_fixes_to_unannotated": True},
    )  # fmt: skip
    result = with_rule_fixes.materialize(REFRESH)
    precision = result.output_for_node(pipeline.node("change_statistics"))["flag_precision"].set_index("flag")
    assert precision.loc["response_copies_context", "reviewed"] == 1
    assert precision.loc["response_copies_context", "changed"] == 1
    assert precision.loc["response_copies_context", "precision"] == 1.0
    statistics = metadata_of(result, pipeline.node("change_statistics"))
    assert "Quality flags" in statistics["report"]
    chart = render_markdown(statistics["chart_flag_precision"]).cells
    assert ["response_copies_context (1)", "1", "████████████████████"] in [chart[i : i + 3] for i in range(len(chart))]
    assert (Path(statistics["charts_folder"]) / "flag_precision.html").exists()

    curated = result.output_for_node(pipeline.node("curated_dolly")).set_index("id")
    assert curated.loc["10", "provenance"] == "human"
    rule_ids = set(curated.index[curated["provenance"] == "rule"])
    assert rule_ids == set(signals.loc[signals["fixable"], "id"]) - {"10"}
    assert "[3]" not in curated.loc["0", "context"] and curated.loc["0", "annotator"] == ""


def test_annotator_shards_gives_a_dataset_made_before_the_quality_signals_their_metadata(
    argilla_server, instance, tmp_path
):
    """A dataset an earlier version made (no metadata properties, no quality notes, no source stamp), with an
    answer in it, upgraded by the next run of annotator_shards itself."""
    pipeline = ProjectOnServer(
        argilla_server, instance, tmp_path, name="quality_upgrade", annotation={"annotators": ["bruno"]}
    )
    argilla = pipeline.argilla
    for dataset in pipeline.datasets().values():
        argilla.delete_dataset(dataset)

    def settings_before_quality_signals():
        settings = curation_dataset_settings()
        return rg.Settings(guidelines=settings.guidelines, fields=[f for f in settings.fields if f.name != "quality_notes"],
                           questions=list(settings.questions))  # fmt: skip

    def records_before_quality_signals(frame):
        """As that version pushed them: the raw text in the fields (no display copies, no marker), originals suggested."""
        return [
            rg.Record(
                id=row["id"], fields={name: row[name] for name in TEXT_FIELDS}, suggestions=suggestions_for(row, None)
            )
            for row in frame.to_dict("records")
        ]

    old = argilla.ensure_annotator_dataset("bruno", pipeline.dataset_name, settings_before_quality_signals)
    argilla.upsert_records(old, records_before_quality_signals(load_shipped_dolly_excerpt().head(3)))
    sent = submit(pipeline, "bruno", ["1"], mark="(answered before the upgrade)")
    answered_before = next(record for record in argilla.iter_records(old.id) if record["external_id"] == "1")

    signals = pipeline.materialize(PLAN).output_for_node(pipeline.node("quality_signals"))
    pushed_run = pipeline.materialize(["annotator_shards"], partition_key="bruno")

    properties = [prop.name for prop in quality_metadata_properties()]
    assert metadata_of(pushed_run, pipeline.node("annotator_shards"))["metadata_properties_added"] == properties
    declared = argilla.request("GET", f"/api/v1/me/datasets/{old.id}/metadata-properties")["items"]
    assert sorted(prop["name"] for prop in declared) == sorted(properties)
    (dataset,) = pipeline.datasets().values()
    assert dataset.id == old.id, "the same dataset, upgraded in place"
    stored = {record["external_id"]: record for record in argilla.iter_records(dataset.id)}
    assert sorted(stored) == sorted(signals["id"]), "every record of the source, once"
    assert stored["0"]["metadata"]["flags"] == ["citation_markers"] and "quality_notes" not in stored["0"]["fields"]
    priority = dict(zip(signals["id"], signals["priority"]))
    assert all(
        record["metadata"]["priority"] == priority[record_id]
        for record_id, record in stored.items()
        if record_id != "1"
    )
    # The answered record keeps its text and its answer; it only gets display copies of its text and their marker.
    assert exact_fields(stored["1"]) == answered_before["fields"] and stored["1"]["metadata"] == DISPLAY_MARKER
    assert stored["1"]["fields"] == {name: display_copy(text) for name, text in answered_before["fields"].items()}
    assert {key: value for key, value in stored["1"].items() if key not in ("fields", "metadata", "updated_at")} == {
        key: value for key, value in answered_before.items() if key not in ("fields", "metadata", "updated_at")
    }
    (response,) = stored["1"]["responses"]
    assert response["values"]["new-response"]["value"] == sent["1"]["new-response"]

    again = pipeline.materialize(["annotator_shards"], partition_key="bruno")
    assert metadata_of(again, pipeline.node("annotator_shards"))["metadata_properties_added"] == [], (
        "nothing left to add"
    )
    argilla.delete_dataset(dataset)
