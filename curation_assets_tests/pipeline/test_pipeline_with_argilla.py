"""All six assets materialized in-process against the real embedded Argilla, with simulated annotators."""

import httpx
import dagster as dg
import pandas as pd
import pytest

from curation_assets.annotation_settings import DATASET_NAME
from curation_assets.assets.assignments import annotation_assignments
from curation_assets.assets.curated import curated_dolly
from curation_assets.assets.feedback import collected_feedback
from curation_assets.assets.quality import quality_signals
from curation_assets.assets.shards import annotator_shards
from curation_assets.assets.source import raw_dolly
from curation_assets.assets.statistics import change_statistics
from curation_assets.checks import argilla_matches_plan, every_record_assigned_exactly_once
from curation_assets.local_argilla.process import start_embedded_argilla
from curation_assets.resources import ArgillaResource, ArgillaUnavailableError
from curation_assets.sensors import annotator_activity_sensor
from curation_assets.simulation import SIMULATION_MARK, SimulationPlan, simulate_annotator
from curation_assets.storage import CurationOutputs

ALL_ASSETS = [raw_dolly, quality_signals, annotation_assignments, annotator_shards, collected_feedback, change_statistics, curated_dolly]
ANNOTATORS = ["ana", "bruno", "chen"]


class Pipeline:
    def __init__(self, server, instance, tmp_path):
        self.server = server
        self.instance = instance
        self.argilla = ArgillaResource(api_url=server.url, api_key=server.owner_api_key)
        self.resources = {
            "argilla": self.argilla,
            "outputs": CurationOutputs(output_dir=str(tmp_path / "output")),
            "io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path / "storage")),
        }
        self.output_dir = tmp_path / "output"

    def materialize(self, selection, partition_key=None):
        result = dg.materialize(
            ALL_ASSETS + [every_record_assigned_exactly_once, argilla_matches_plan],
            selection=selection,
            partition_key=partition_key,
            instance=self.instance,
            resources=self.resources,
        )
        assert result.success
        return result

    def push_all_shards(self):
        return {
            annotator: self.materialize([annotator_shards], partition_key=annotator)
            for annotator in self.instance.get_dynamic_partitions("annotators")
        }


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pipeline")
    (tmp_path / "dagster").mkdir()
    server = start_embedded_argilla(tmp_path / "argilla", annotator_names=ANNOTATORS)
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
            yield Pipeline(server, instance, tmp_path)
    finally:
        server.stop()


def shard_metadata(result):
    (materialization,) = result.asset_materializations_for_node("annotator_shards")
    return {key: value.value for key, value in materialization.metadata.items()}


def test_full_run_push_collect_chart_curate(pipeline):
    plan_run = pipeline.materialize([raw_dolly, quality_signals, annotation_assignments])
    plan = plan_run.output_for_node("annotation_assignments")
    assert len(plan) == 37 and plan["id"].is_unique
    assert sorted(plan["annotator"].value_counts().tolist()) == [12, 12, 13]
    assert all(check.passed for check in plan_run.get_asset_check_evaluations())
    assert sorted(pipeline.instance.get_dynamic_partitions("annotators")) == ANNOTATORS

    pushes = pipeline.push_all_shards()
    assert sum(shard_metadata(run)["records_pushed"] for run in pushes.values()) == 37
    datasets = pipeline.argilla.datasets_named(DATASET_NAME)
    assert sorted(datasets) == ANNOTATORS
    held = {name: {r["external_id"] for r in pipeline.argilla.iter_records(d["id"])} for name, d in datasets.items()}
    assert sum(map(len, held.values())) == 37 and set.union(*held.values()) == set(plan["id"])

    # Re-running the push changes nothing and duplicates nothing.
    again = pipeline.push_all_shards()
    assert all(shard_metadata(run)["records_pushed"] == 0 for run in again.values())
    assert all(shard_metadata(run)["skipped_unchanged_since_last_push"] for run in again.values()), "nothing read or pushed"
    assert sum(len(list(pipeline.argilla.iter_records(d["id"]))) for d in datasets.values()) == 37

    # A record deleted in Argilla: the dataset no longer holds what the last push left, so the push runs and restores it.
    victim = next(pipeline.argilla.iter_records(datasets["ana"]["id"]))
    pipeline.argilla.delete_records(datasets["ana"]["id"], [victim["id"]])
    restored = shard_metadata(pipeline.materialize([annotator_shards], partition_key="ana"))
    assert restored["skipped_unchanged_since_last_push"] is False and restored["records_pushed"] == 1

    actions = {}
    for account in pipeline.server.credentials.annotators:
        actions[account.username] = simulate_annotator(pipeline.server.url, account.api_key, account.username, SimulationPlan(share=0.6))
    expected = sum((counter for counter in actions.values()), start=__import__("collections").Counter())

    refresh = pipeline.materialize([collected_feedback, change_statistics, curated_dolly])
    feedback = refresh.output_for_node("collected_feedback")
    statuses = feedback["status"].value_counts().to_dict()
    assert statuses.get("submitted", 0) == expected["submit_unchanged"] + expected["submit_edited"]
    assert statuses.get("discarded", 0) == expected["discard"], "discards without values are still counted"
    assert statuses.get("draft", 0) == expected["draft"]
    assert len(feedback) == 37

    curated = refresh.output_for_node("curated_dolly")
    assert len(curated) == statuses["submitted"]
    assert (curated["provenance"] == "human").sum() == expected["submit_edited"]
    edited = curated[curated["provenance"] == "human"]
    assert edited["response"].str.endswith(SIMULATION_MARK).all()
    assert all(check.passed for check in refresh.get_asset_check_evaluations())

    statistics = refresh.output_for_node("change_statistics")
    counts = dict(zip(statistics["status_counts"]["status"], statistics["status_counts"]["count"]))
    assert counts["submitted"] == statuses["submitted"]
    (materialization,) = refresh.asset_materializations_for_node("change_statistics")
    assert "data:image/png;base64," in materialization.metadata["report"].value
    for chart in ("response_status", "changed_fields", "status_by_category", "status_by_annotator", "field_change"):
        assert (pipeline.output_dir / "statistics" / f"{chart}.html").exists()
    assert (pipeline.output_dir / "statistics" / "plotly.min.js").exists(), "charts open without a network"
    for published in ("hf_dataset", "curated_dolly.parquet", "curated_dolly.jsonl", "README.md"):
        assert (pipeline.output_dir / "curated_dolly" / published).exists()


def test_sensor_skips_then_refreshes_then_registers_a_newcomer(pipeline):
    resources = {"argilla": pipeline.argilla}

    def tick(cursor):
        with dg.build_sensor_context(instance=pipeline.instance, cursor=cursor, resources=resources) as context:
            return annotator_activity_sensor(context)

    first = tick(None)
    cursor = first.cursor
    quiet = tick(cursor)
    assert not quiet.run_requests and quiet.skip_reason is not None, "nothing new: skip"

    ana = next(a for a in pipeline.server.credentials.annotators if a.username == "ana")
    simulate_annotator(pipeline.server.url, ana.api_key, "ana", SimulationPlan(share=1.0, submit_unchanged=1.0))
    busy = tick(cursor)
    assert [request.job_name for request in busy.run_requests] == ["refresh_curation"]
    cursor = busy.cursor

    owner = {"X-Argilla-Api-Key": pipeline.server.owner_api_key}
    httpx.post(
        f"{pipeline.server.url}/api/v1/users",
        headers=owner,
        json={"first_name": "Dora", "username": "dora", "password": "dora-password-1", "role": "annotator"},
    ).raise_for_status()
    newcomer = tick(cursor)
    assert [request.partitions_def_name for request in newcomer.dynamic_partitions_requests] == ["annotators"]
    assert list(newcomer.dynamic_partitions_requests[0].partition_keys) == ["dora"]
    assert [request.job_name for request in newcomer.run_requests] == ["plan_assignments"]


def test_newcomer_takes_only_untouched_records_and_answers_stay(pipeline):
    before = pipeline.materialize([collected_feedback]).output_for_node("collected_feedback")
    answered_before = before[before["status"] != "pending"][["record_id", "shard", "status"]]

    plan = pipeline.materialize([annotation_assignments]).output_for_node("annotation_assignments")
    assert "dora" in set(plan["annotator"])
    pipeline.push_all_shards()

    after = pipeline.materialize([collected_feedback]).output_for_node("collected_feedback")
    merged = answered_before.merge(after, on="record_id", suffixes=("_before", "_after"))
    assert len(merged) == len(answered_before), "no answered record lost"
    assert (merged["shard_before"] == merged["shard_after"]).all(), "answered records did not move"
    assert (merged["status_before"] == merged["status_after"]).all()
    assert after["record_id"].is_unique and len(after) == 37
    assert (after["shard"] == "dora").sum() > 0


def test_unreachable_argilla_and_wrong_key_fail_clearly(pipeline):
    unreachable = ArgillaResource(api_url="http://127.0.0.1:9", api_key="x", retry_attempts=2, retry_base_delay_seconds=0.05)
    with pytest.raises(ArgillaUnavailableError, match=r"cannot reach Argilla at http://127.0.0.1:9.*curation-argilla serve"):
        unreachable.check_connection()
    wrong_key = ArgillaResource(api_url=pipeline.server.url, api_key="not-a-key")
    with pytest.raises(ArgillaUnavailableError, match="rejected the API key"):
        wrong_key.check_connection()
    with dg.build_sensor_context(instance=pipeline.instance, cursor='{"ana": {}}', resources={"argilla": unreachable}) as context:
        result = annotator_activity_sensor(context)
    assert isinstance(result, dg.SkipReason) and "cannot reach Argilla at http://127.0.0.1:9" in result.skip_message
