"""What the fault tests share: a pipeline on one server and Dagster instance, fault injection, and snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import dagster as dg
import httpx
import pandas as pd

from curation_assets.annotation_settings import DATASET_NAME
from curation_assets.annotator_client import AnnotatorSession
from curation_assets.assets.assignments import annotation_assignments
from curation_assets.assets.curated import curated_dolly
from curation_assets.assets.feedback import collected_feedback
from curation_assets.assets.quality import quality_signals
from curation_assets.assets.shards import annotator_shards
from curation_assets.assets.source import raw_dolly
from curation_assets.assets.statistics import change_statistics
from curation_assets.checks import argilla_matches_plan, every_record_assigned_exactly_once
from curation_assets.definitions import defs as project_definitions
from curation_assets.resources import ArgillaResource
from curation_assets.sensors import annotator_activity_sensor
from curation_assets.storage import CurationOutputs

ALL_ASSETS = [raw_dolly, quality_signals, annotation_assignments, annotator_shards, collected_feedback, change_statistics, curated_dolly]
# Retries short enough for a test to give up in about a second.
FAST_RETRIES = dict(retry_attempts=3, retry_base_delay_seconds=0.05, retry_max_delay_seconds=0.2, retry_budget_seconds=5.0)


class PipelineOnServer:
    """The six assets, materialized in-process against one real server with one Dagster instance."""

    def __init__(self, server, instance: dg.DagsterInstance, folder: Path):
        self.server = server
        self.instance = instance
        self.folder = folder
        self.argilla = ArgillaResource(api_url=server.url, api_key=server.owner_api_key)

    def resources(self, argilla=None) -> dict:
        return {
            "argilla": argilla or self.argilla,
            "outputs": CurationOutputs(output_dir=str(self.folder / "output")),
            "io_manager": dg.FilesystemIOManager(base_dir=str(self.folder / "storage")),
        }

    def materialize(self, selection, partition_key=None, argilla=None, run_config=None, raise_on_error=True):
        return dg.materialize(
            ALL_ASSETS + [every_record_assigned_exactly_once, argilla_matches_plan],
            selection=selection,
            partition_key=partition_key,
            instance=self.instance,
            run_config=run_config,
            raise_on_error=raise_on_error,
            resources=self.resources(argilla),
        )

    def run_job(self, job, partition_key=None, argilla=None):
        """A run of one of the project's jobs, as the sensor launches it (the sensor looks runs up by job name)."""
        definitions = dg.Definitions(assets=ALL_ASSETS, jobs=[job], resources=self.resources(argilla))
        return definitions.resolve_job_def(job.name).execute_in_process(
            partition_key=partition_key, instance=self.instance, raise_on_error=False
        )

    def sensor_tick(self, cursor=None, argilla=None):
        # The project's own definitions: partitioned run requests are checked against its jobs and
        # the instance's dynamic partitions, as the daemon does.
        with dg.partition_loading_context(dynamic_partitions_store=self.instance), dg.build_sensor_context(
            instance=self.instance, cursor=cursor, resources={"argilla": argilla or self.argilla}, definitions=project_definitions
        ) as context:
            return annotator_activity_sensor.evaluate_tick(context)

    def plan(self, **source_config):
        run_config = {"ops": {"raw_dolly": {"config": source_config}}} if source_config else None
        return self.materialize([raw_dolly, quality_signals, annotation_assignments], run_config=run_config).output_for_node(
            "annotation_assignments"
        )

    def push_all_shards(self, argilla=None):
        for annotator in sorted(self.instance.get_dynamic_partitions("annotators")):
            self.materialize([annotator_shards], partition_key=annotator, argilla=argilla)

    def refresh(self):
        result = self.materialize([collected_feedback, change_statistics, curated_dolly])
        self.last_checks = {check.check_name: check.passed for check in result.get_asset_check_evaluations()}
        return result.output_for_node("collected_feedback"), result.output_for_node("curated_dolly")


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The failed steps' errors with their causes, as the Dagster UI shows them."""
    return "\n".join(event.step_failure_data.error.to_string() for event in result.get_step_failure_events())


class ActAfter(httpx.BaseTransport):
    """Passes requests through; after the first answered request that matches, runs `action` (a crash)."""

    def __init__(self, inner: httpx.BaseTransport, matches: Callable[[httpx.Request], bool], action: Callable[[], None]):
        self.inner, self.matches, self.action = inner, matches, action
        self.done = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.done and self.matches(request):
            self.done = True
            self.action()
        return response

    def close(self) -> None:
        self.inner.close()


def is_bulk_upsert(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.url.path.endswith("/records/bulk")


class AnswersFirstWith(httpx.BaseTransport):
    """Answers the first requests with these statuses (a busy server or proxy), then passes requests through."""

    def __init__(self, inner: httpx.BaseTransport, statuses: list[int]):
        self.inner, self.statuses = inner, list(statuses)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.statuses:
            return httpx.Response(self.statuses.pop(0), text="injected", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def resource_with_transport(base: ArgillaResource, wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport], **settings):
    """The same resource with its real transport wrapped, inside the retries, as a fault would strike."""

    class ArgillaWithFault(ArgillaResource):
        def _transport(self):
            transport = super()._transport()
            transport.inner = wrap(transport.inner)
            return transport

    return ArgillaWithFault(api_url=base.api_url, api_key=base.api_key, **settings)


def resource_with_fault(base: ArgillaResource, matches, action, **settings) -> ArgillaResource:
    """The same resource, with a fault injected right after the first matching request has been answered."""
    return resource_with_transport(base, lambda inner: ActAfter(inner, matches, action), **settings)


def delete_curation_datasets(argilla: ArgillaResource) -> None:
    for dataset in argilla.datasets_named(DATASET_NAME).values():
        argilla.request("DELETE", f"/api/v1/datasets/{dataset['id']}")


def records_by_shard(argilla: ArgillaResource) -> dict[str, list[dict]]:
    """Every record of every annotator dataset, with responses and suggestions, as the server stores them."""
    return {
        shard: list(argilla.iter_records(dataset["id"], include=("responses", "suggestions")))
        for shard, dataset in sorted(argilla.datasets_named(DATASET_NAME).items())
    }


def responses_by_record(argilla: ArgillaResource) -> dict[tuple[str, str], dict]:
    """(external id, user id) → the response as stored: status, values and timestamps."""
    return {
        (record["external_id"], response["user_id"]): response
        for records in records_by_shard(argilla).values()
        for record in records
        for response in record.get("responses") or []
    }


def submit(server, annotator: str, record_ids: list[str], status: str = "submitted", mark: str = "") -> dict[str, dict]:
    """The annotator answers these records of their queue as the web UI does; returns what was sent."""
    account = next(account for account in server.credentials.annotators if account.username == annotator)
    sent = {}
    with AnnotatorSession(server.url, account.api_key) as session:
        dataset_id = session.dataset_id(DATASET_NAME, annotator)
        queue, _ = session.queue(dataset_id, limit=1000)
        for record in queue:
            if record.external_id in record_ids:
                answers = {
                    "new-instruction": f"{record.fields['instruction']} {mark}".strip(),
                    "new-response": f"{record.fields['response']} {mark}".strip(),
                }
                session.respond(record, status, answers)
                sent[record.external_id] = answers
    return sent


def comparable_curated(curated: pd.DataFrame) -> list[dict]:
    return curated.sort_values("id").to_dict("records")


def comparable_argilla(argilla: ArgillaResource) -> dict[str, dict]:
    """What an annotator sees and answered, per shard and record, without ids or timestamps."""
    return {
        shard: {
            record["external_id"]: {
                "fields": record["fields"],
                "suggestions": sorted((str(s["value"]), s["agent"]) for s in record.get("suggestions") or []),
                "responses": sorted((r["status"], str(r["values"])) for r in record.get("responses") or []),
            }
            for record in records
        }
        for shard, records in records_by_shard(argilla).items()
    }
