"""Overlap, agreement, review and pace end to end: the real embedded Argilla, annotators and a reviewer working over the
web UI's REST calls, the project's assets materialized in-process."""

import json
import time

import dagster as dg
import pandas as pd
import pytest

from curation_assets.argilla_adapter.dataset_settings import REVIEW_VERDICT
from curation_assets.local_argilla.process import start_embedded_argilla
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.harness import REFRESH, ProjectOnServer, metadata_of

pytestmark = pytest.mark.server
PEOPLE = ["ana", "bruno", "rita"]
RECORDS = [
    {
        "id": f"r{i}",
        "instruction": f"Question {i}?",
        "context": "",
        "response": f"The answer to question {i} is {i}.",
        "category": "open_qa",
    }
    for i in range(6)
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_embedded_argilla(tmp_path_factory.mktemp("argilla"), annotator_names=PEOPLE)
    yield server
    server.stop()


def key_of(server, username: str) -> str:
    return next(account.api_key for account in server.credentials.annotators if account.username == username)


def project(server, instance, folder, **review) -> ProjectOnServer:
    source = folder / "records.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in RECORDS))
    return ProjectOnServer(
        server, instance, folder, name="people",
        source={"file": str(source)},
        annotation={"annotators": ["ana", "bruno"], "overlap": {"share": 1.0, "annotators_per_record": 2}},
        review={"reviewers": ["rita"], **review},
    )  # fmt: skip


def answer(server, pipeline, annotator: str, answers: dict[str, tuple[str, str | None]], pause: float = 0.0) -> None:
    """The annotator answers records as the UI does: record id → (status, new response or None)."""
    with AnnotatorSession(server.url, key_of(server, annotator)) as session:
        dataset_id = session.dataset_id(pipeline.dataset_name, annotator)
        queue, _ = session.queue(dataset_id, limit=50)
        for record in sorted(queue, key=lambda record: record.external_id):
            if record.external_id in answers:
                status, response = answers[record.external_id]
                values = (
                    None
                    if response is None
                    else {"new-instruction": record.fields["instruction"], "new-response": response}
                )
                session.respond(record, status, values)
                time.sleep(pause)


def test_disagreements_go_to_the_reviewer_and_the_adjudicated_text_is_published(server, tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline = project(server, instance, tmp_path)
        plan = pipeline.plan()
        assert (
            plan.groupby("id")["annotator"].apply(sorted)
            == pd.Series([["ana", "bruno"]] * 6, index=plan["id"].unique()).sort_index()
        ).all()
        pipeline.push_all_shards()
        agreed = "The answer to question 0 is zero."
        answer(server, pipeline, "ana", {"r0": ("submitted", agreed), "r1": ("submitted", "Kept by ana."),
                                         "r2": ("submitted", "Ana's long and careful answer to the second question.")})  # fmt: skip
        answer(
            server,
            pipeline,
            "bruno",
            {"r0": ("submitted", agreed), "r1": ("discarded", None), "r2": ("submitted", "No.")},
        )

        first = pipeline.materialize(REFRESH)
        queue = first.output_for_node(pipeline.node("review_queue")).set_index("record_id")
        assert sorted(queue.index) == ["r1", "r2"] and set(queue["reviewer"]) == {"rita"}
        assert queue.loc["r1", "reason"] == "1 discarded vs 1 submitted"
        agreement = first.output_for_node(pipeline.node("annotator_agreement"))["agreement_pairs"].iloc[0]
        assert agreement["shared_records"] == 3 and agreement["decision_agreement"] == round(2 / 3, 3)
        held_out = first.output_for_node(pipeline.node("curated_dolly")).set_index("id")
        assert list(held_out.index) == ["r0"], "disagreements are held out until adjudicated"

        # The sensor sees the review queue is newer than any review push, and asks for rita's.
        tick = pipeline.sensor_tick()
        assert {(request.job_name, request.partition_key) for request in tick.run_requests} >= {
            (pipeline.job_name("push_reviews"), "rita")
        }
        pushed = pipeline.materialize(["review_shards"], partition_key="rita")
        assert metadata_of(pushed, pipeline.node("review_shards"))["reviews_pushed"] == 2

        with AnnotatorSession(server.url, key_of(server, "rita")) as rita:
            dataset_id = rita.dataset_id(pipeline.project.review_dataset_name, "rita")
            reviews, total = rita.queue(dataset_id, limit=10)
            assert total == 2
            r2 = next(review for review in reviews if review.external_id == "r2")
            assert "Ana's long and careful answer" in r2.fields["versions"] and "No." in r2.fields["versions"]
            assert "pre-filled" in r2.fields["versions"]
            r1 = next(review for review in reviews if review.external_id == "r1")
            rita.respond(
                r1,
                "submitted",
                {REVIEW_VERDICT: "accept", "new-instruction": "Question 1?", "new-response": "Rita decided."},
            )
        after_review = pipeline.sensor_tick(cursor=tick.cursor)
        assert pipeline.job_name("refresh_curation") in [request.job_name for request in after_review.run_requests]

        _, curated = pipeline.refresh()
        curated = curated.set_index("id")
        assert sorted(curated.index) == ["r0", "r1"], "r2 still waits: held out"
        assert curated.loc["r1", "response"] == "Rita decided." and curated.loc["r1", "provenance"] == "adjudicated"
        assert curated.loc["r1", "annotator"] == "rita", "who decided"
        assert pipeline.last_checks["curated_records_are_valid"]

        # The same project declared with the majority policy: r2's two submitted versions stand by the closest.
        majority = project(server, instance, tmp_path, until_adjudicated="majority")
        result = majority.materialize(REFRESH)
        by_majority = result.output_for_node(majority.node("curated_dolly")).set_index("id")
        assert (
            by_majority.loc["r2", "provenance"] == "majority" and by_majority.loc["r1", "provenance"] == "adjudicated"
        )
        card = (majority.output_dir / "curated_dolly" / "README.md").read_text()
        assert "published as the majority's version" in card


def test_pace_gives_back_the_intervals_annotators_worked_at(server, tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        source = tmp_path / "records.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in RECORDS))
        pipeline = ProjectOnServer(
            server, instance, tmp_path, name="pace", source={"file": str(source)},
            annotation={"annotators": ["ana", "bruno"]},
        )  # fmt: skip
        plan = pipeline.plan()
        pipeline.push_all_shards()
        mine = {annotator: sorted(plan.loc[plan["annotator"] == annotator, "id"]) for annotator in ("ana", "bruno")}
        answer(server, pipeline, "ana", {record: ("submitted", "Fine.") for record in mine["ana"]}, pause=1.0)
        answer(server, pipeline, "bruno", {record: ("discarded", None) for record in mine["bruno"]}, pause=2.0)
        result = pipeline.materialize(REFRESH)
        pace = result.output_for_node(pipeline.node("annotator_pace"))["pace"].set_index("annotator")
        # The server stamps each answer; requests take some milliseconds more than the pause between them.
        assert 1.0 <= pace.loc["ana", "median_seconds_per_record"] < 1.5
        assert 2.0 <= pace.loc["bruno", "median_seconds_per_record"] < 2.5
        assert pace.loc["ana", "records_left"] == 0 and pace.loc["bruno", "discard_rate"] == 1.0
        assert "chart_answers_per_hour" in metadata_of(result, pipeline.node("annotator_pace"))
