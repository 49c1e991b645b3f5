"""All the assets materialized in-process against the real embedded Argilla, with simulated annotators."""

import collections

import httpx
import pandas as pd
import pytest

from curation_assets.argilla_adapter.errors import ArgillaUnauthorizedError, ArgillaUnreachableError
from curation_assets.defs.resources import ArgillaResource
from curation_assets.local_argilla.process import start_embedded_argilla
from curation_assets.logic.changes import COMPARISON_VERSION
from curation_assets.logic.curation import within_source
from curation_assets.logic.statistics import compute_statistics
from curation_assets.quickstart.simulation import SIMULATION_MARK, SimulationPlan, simulate_annotator
from curation_assets_tests.harness import PLAN, REFRESH, ProjectOnServer, check_results, metadata_of

pytestmark = pytest.mark.server
ANNOTATORS = ["ana", "bruno", "chen"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The module's server; each test that uses it has a project (so datasets) of its own and adds no account."""
    server = start_embedded_argilla(tmp_path_factory.mktemp("argilla"), annotator_names=ANNOTATORS)
    yield server
    server.stop()


@pytest.fixture
def pipeline(server, instance, tmp_path):
    """The project on the module's server, with an instance of the test's own; its team declared."""
    return ProjectOnServer(server, instance, tmp_path, annotation={"annotators": ANNOTATORS})


@pytest.fixture
def pushed_on_own_server(fresh_argilla_server, instance, tmp_path):
    """The default project (team: every annotator account) planned and pushed on a server of the test's own,
    for tests that add an account."""
    pipeline = ProjectOnServer(fresh_argilla_server, instance, tmp_path)
    pipeline.plan()
    pipeline.push_all_shards()
    return pipeline


def answer(pipeline, annotator: str, plan: SimulationPlan) -> collections.Counter:
    account = next(a for a in pipeline.server.credentials.annotators if a.username == annotator)
    return simulate_annotator(pipeline.server.url, account.api_key, annotator, plan, pipeline.dataset_name)


def shard_metadata(pipeline, result):
    return metadata_of(result, pipeline.node("annotator_shards"))


def test_full_run_push_collect_chart_curate(pipeline):
    plan_run = pipeline.materialize(PLAN)
    plan = plan_run.output_for_node(pipeline.node("annotation_assignments"))
    assert len(plan) == 37 and plan["id"].is_unique
    assert sorted(plan["annotator"].value_counts().tolist()) == [12, 12, 13]
    assert check_results(plan_run) == {"no_quarantined_rows": True, "every_record_assigned_as_planned": True}
    assert pipeline.partitions == ANNOTATORS

    # Every annotator in one run (as the quickstart and a backfill push): each partition materialized on its own.
    one_run = pipeline.push_shards_in_one_run()
    pushed = {
        event.partition: {key: value.value for key, value in event.materialization.metadata.items()}
        for event in one_run.get_asset_materialization_events()
    }
    assert sorted(pushed) == ANNOTATORS
    assert all(pushed[name]["annotator"] == name for name in ANNOTATORS)
    assert sum(metadata["records_pushed"] for metadata in pushed.values()) == 37
    assert pipeline.instance.get_materialized_partitions(pipeline.key("annotator_shards")) == set(ANNOTATORS)
    datasets = pipeline.datasets()
    assert sorted(datasets) == ANNOTATORS
    held = {name: {r["external_id"] for r in pipeline.argilla.iter_records(d.id)} for name, d in datasets.items()}
    assert sum(map(len, held.values())) == 37 and set.union(*held.values()) == set(plan["id"])

    # Re-running the push changes nothing and duplicates nothing.
    again = pipeline.push_all_shards()
    assert all(shard_metadata(pipeline, run)["records_pushed"] == 0 for run in again.values())
    assert all(shard_metadata(pipeline, run)["skipped_unchanged_since_last_push"] for run in again.values()), (
        "nothing read or pushed"
    )
    assert sum(len(list(pipeline.argilla.iter_records(d.id))) for d in datasets.values()) == 37

    # A record deleted in Argilla: the dataset no longer holds what the last push left, so the push runs and restores
    # it.
    victim = next(pipeline.argilla.iter_records(datasets["ana"].id))
    pipeline.argilla.delete_records(datasets["ana"].id, [victim["id"]])
    restored = shard_metadata(pipeline, pipeline.materialize(["annotator_shards"], partition_key="ana"))
    assert restored["skipped_unchanged_since_last_push"] is False and restored["records_pushed"] == 1

    actions = {annotator: answer(pipeline, annotator, SimulationPlan(share=0.6)) for annotator in ANNOTATORS}
    expected = sum((counter for counter in actions.values()), start=collections.Counter())

    refresh = pipeline.materialize(REFRESH)
    feedback = refresh.output_for_node(pipeline.node("collected_feedback"))
    statuses = feedback["status"].value_counts().to_dict()
    assert statuses.get("submitted", 0) == expected["submit_unchanged"] + expected["submit_edited"]
    assert statuses.get("discarded", 0) == expected["discard"], "discards without values are still counted"
    assert statuses.get("draft", 0) == expected["draft"]
    assert len(feedback) == 37

    curated = refresh.output_for_node(pipeline.node("curated_dolly"))
    assert len(curated) == statuses["submitted"]
    assert (curated["provenance"] == "human").sum() == expected["submit_edited"]
    edited = curated[curated["provenance"] == "human"]
    assert edited["response"].str.endswith(SIMULATION_MARK).all()
    assert check_results(refresh) == {
        "argilla_matches_plan": True,
        "curated_records_are_valid": True,
        "no_annotator_agrees_far_less": True,
    }

    statistics = refresh.output_for_node(pipeline.node("change_statistics"))
    counts = dict(zip(statistics["status_counts"]["status"], statistics["status_counts"]["count"]))
    assert counts["submitted"] == statuses["submitted"]
    statistics_metadata = metadata_of(refresh, pipeline.node("change_statistics"))
    assert "data:image/png;base64," in statistics_metadata["report"]
    # The charts people see without a click: under the 1,000 characters Dagster's asset page shows in place.
    status_chart = statistics_metadata["chart_status"]
    assert (
        len(status_chart) < 1000 and f"| submitted | {statuses['submitted']} |" in status_chart and "█" in status_chart
    )
    for chart in ("response_status", "changed_fields", "status_by_category", "status_by_annotator", "field_change"):
        assert (pipeline.output_dir / "statistics" / f"{chart}.html").exists()
    assert (pipeline.output_dir / "statistics" / "plotly.min.js").exists(), "charts open without a network"
    for published in ("hf_dataset", "curated_dolly.parquet", "curated_dolly.jsonl", "README.md"):
        assert (pipeline.output_dir / "curated_dolly" / published).exists()


def test_sensor_skips_then_refreshes_then_registers_a_newcomer(pushed_on_own_server):
    pipeline = pushed_on_own_server
    tick = pipeline.sensor_tick
    first = tick(None)
    cursor = first.cursor
    quiet = tick(cursor)
    assert not quiet.run_requests and quiet.skip_message, "nothing new: skip"

    answer(pipeline, "ana", SimulationPlan(share=1.0, submit_unchanged=1.0))
    busy = tick(cursor)
    assert [request.job_name for request in busy.run_requests] == [pipeline.job_name("refresh_curation")]
    cursor = busy.cursor

    add_dora(pipeline)
    newcomer = tick(cursor)
    assert [request.partitions_def_name for request in newcomer.dynamic_partitions_requests] == ["curation_annotators"]
    assert list(newcomer.dynamic_partitions_requests[0].partition_keys) == ["dora"]
    assert [request.job_name for request in newcomer.run_requests] == [pipeline.job_name("plan_assignments")]


def add_dora(pipeline) -> None:
    owner = {"X-Argilla-Api-Key": pipeline.server.owner_api_key}
    httpx.post(
        f"{pipeline.server.url}/api/v1/users",
        headers=owner,
        json={"first_name": "Dora", "username": "dora", "password": "dora-password-1", "role": "annotator"},
    ).raise_for_status()


def test_newcomer_takes_only_untouched_records_and_answers_stay(pushed_on_own_server):
    pipeline = pushed_on_own_server
    for annotator in ANNOTATORS:
        answer(pipeline, annotator, SimulationPlan(share=0.6))
    before = pipeline.materialize(["collected_feedback"]).output_for_node(pipeline.node("collected_feedback"))
    answered_before = before[before["status"] != "pending"][["record_id", "shard", "status"]]
    assert len(answered_before) > 0
    add_dora(pipeline)

    plan = pipeline.materialize(["annotation_assignments"]).output_for_node(pipeline.node("annotation_assignments"))
    assert "dora" in set(plan["annotator"]) and pipeline.partitions == [*ANNOTATORS, "dora"]
    pipeline.push_all_shards()

    after = pipeline.materialize(["collected_feedback"]).output_for_node(pipeline.node("collected_feedback"))
    merged = answered_before.merge(after, on="record_id", suffixes=("_before", "_after"))
    assert len(merged) == len(answered_before), "no answered record lost"
    assert (merged["shard_before"] == merged["shard_after"]).all(), "answered records did not move"
    assert (merged["status_before"] == merged["status_after"]).all()
    assert after["record_id"].is_unique and len(after) == 37
    assert (after["shard"] == "dora").sum() > 0


def test_unreachable_argilla_and_wrong_key_fail_clearly(pipeline):
    unreachable = ArgillaResource(
        api_url="http://127.0.0.1:9", api_key="x", retry_attempts=2, retry_base_delay_seconds=0.05
    )
    with pytest.raises(
        ArgillaUnreachableError, match=r"cannot reach Argilla at http://127.0.0.1:9.*curation-argilla serve"
    ):
        unreachable.client.check_connection()
    wrong_key = ArgillaResource(api_url=pipeline.server.url, api_key="not-a-key")
    with pytest.raises(ArgillaUnauthorizedError, match="rejected the API key"):
        wrong_key.client.check_connection()
    result = pipeline.sensor_tick(cursor='{"ana": {}}', argilla=unreachable)
    assert not result.run_requests and "cannot reach Argilla at http://127.0.0.1:9" in result.skip_message
    assert result.cursor == '{"ana": {}}', (
        "the cursor is kept: the next tick compares against the last state actually seen"
    )


def test_a_refresh_takes_the_comparisons_it_kept_and_charts_what_comparing_everything_gives(pipeline):
    signals = pipeline.materialize(PLAN).output_for_node(pipeline.node("quality_signals"))
    pipeline.push_shards_in_one_run()
    known_path = pipeline.output_dir / "change_cache" / f"known_changes-v{COMPARISON_VERSION}.parquet"

    def refreshed_statistics() -> tuple[dict, dict]:
        """The tables change_statistics published, and those of every submitted row compared afresh."""
        run = pipeline.materialize(REFRESH)
        feedback, _ = within_source(run.output_for_node(pipeline.node("collected_feedback")), signals["id"])
        return run.output_for_node(pipeline.node("change_statistics")), compute_statistics(feedback, signals).tables()

    def assert_same_tables(published: dict, afresh: dict) -> None:
        assert sorted(published) == sorted(afresh)
        for name in afresh:
            pd.testing.assert_frame_equal(published[name], afresh[name])

    answer(pipeline, "ana", SimulationPlan(share=0.8, submit_unchanged=0.3, submit_edited=0.7, discard=0.0, seed=3))
    published, afresh = refreshed_statistics()
    assert_same_tables(published, afresh)
    edited_answers = afresh["field_change"]["changed"].sum()
    assert edited_answers > 0 and len(pd.read_parquet(known_path)) == edited_answers  # one row per edited answer

    # More answers: the earlier ones' comparisons are taken from the file, the new ones compared; same tables.
    answer(pipeline, "bruno", SimulationPlan(share=0.8, submit_unchanged=0.3, submit_edited=0.7, discard=0.0, seed=4))
    published, afresh = refreshed_statistics()
    assert_same_tables(published, afresh)
    assert len(pd.read_parquet(known_path)) == afresh["field_change"]["changed"].sum() > edited_answers

    # What the file holds is what the step uses (a value no comparison gives, planted in every changed row) ...
    planted = pd.read_parquet(known_path)
    planted.loc[planted["field"] == "response", "similarity"] = 0.123
    planted.to_parquet(known_path, index=False)
    published, afresh = refreshed_statistics()
    changed_response = published["field_change"].set_index("field").loc["response"]
    assert changed_response["changed"] > 0 and changed_response["mean_similarity_when_changed"] == 0.123
    # ... and a file that cannot be read costs a comparison of every row, not a failed refresh.
    known_path.write_bytes(b"not a parquet file")
    published, afresh = refreshed_statistics()
    assert_same_tables(published, afresh)
