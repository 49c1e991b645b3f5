"""One harness for every test (and benchmark) that runs the pipeline: a project built in code, as a defs.yaml declares it,
materialized in-process against a real Argilla server with one Dagster instance."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pandas as pd

from curation_assets.argilla_adapter.client import ArgillaClient, ArgillaDataset
from curation_assets.defs.build import ASSET_NAMES, build_project_definitions
from curation_assets.defs.jobs import REFRESHED, every_partition_tags
from curation_assets.defs.project import Project
from curation_assets.defs.resources import ArgillaResource

PLAN = ("raw_dolly", "quality_signals", "annotation_assignments")
REFRESH = REFRESHED
SHIPPED_SOURCE = {"shipped": "dolly-excerpt"}
# Retries short enough for a test to give up in about a second.
FAST_RETRIES = dict(
    retry_attempts=3, retry_base_delay_seconds=0.05, retry_max_delay_seconds=0.2, retry_budget_seconds=5.0
)


class ProjectOnServer:
    """A curation project's assets, jobs and sensor, run in-process against one real server and one Dagster instance."""

    def __init__(self, server, instance: dg.DagsterInstance, folder: Path, name: str = "curation", **settings):
        self.server = server
        self.instance = instance
        self.folder = Path(folder)
        settings.setdefault("source", SHIPPED_SOURCE)
        settings.setdefault("output_dir", str(self.folder / "output"))
        # Tests tick the sensor back to back and expect each tick to poll, as without a webhook receiver; the webhook
        # tests (test_webhooks_into_dagster.py) give a marks folder instead.
        settings.setdefault("argilla", {"webhooks": {"enabled": False}})
        self.project = Project.in_code(name, **settings)
        self.resource = ArgillaResource(api_url=server.url, api_key=server.owner_api_key)
        # For the tests' own look at Argilla (the runs use the resource's client, as Dagster runs them).
        self.argilla: ArgillaClient = self.resource.client
        self.definitions = build_project_definitions(self.project, self.resource)

    # -- names ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.project.name

    @property
    def dataset_name(self) -> str:
        return self.project.dataset_name

    @property
    def output_dir(self) -> Path:
        return Path(self.project.settings.output_dir)

    def key(self, asset: str) -> dg.AssetKey:
        return self.project.asset_key(asset)

    def job_name(self, job: str) -> str:
        return self.project.job_name(job)

    @property
    def partitions(self) -> list[str]:
        return sorted(self.instance.get_dynamic_partitions(self.project.annotator_partitions.name))

    def datasets(self, argilla: ArgillaClient | None = None) -> dict[str, ArgillaDataset]:
        return (argilla or self.argilla).datasets_named(self.dataset_name)

    # -- runs -----------------------------------------------------------------------------

    def resources(self, argilla: ArgillaResource | None = None) -> dict:
        return {
            self.project.argilla_resource_key: argilla or self.resource,
            "io_manager": dg.FilesystemIOManager(base_dir=str(self.folder / "storage")),
        }

    def materialize(
        self, assets, partition_key=None, argilla=None, raise_on_error=True, checks=True
    ) -> dg.ExecuteInProcessResult:
        """Materialize these assets (by name) of the project, with their checks unless told otherwise."""
        result = dg.materialize(
            [*self.definitions.assets, *(self.definitions.asset_checks if checks else [])],
            selection=[self.key(asset) for asset in assets],
            partition_key=partition_key,
            instance=self.instance,
            raise_on_error=raise_on_error,
            resources=self.resources(argilla),
        )
        if raise_on_error:
            assert result.success
        return result

    def run_job(self, job: str, partition_key=None, argilla=None, tags=None) -> dg.ExecuteInProcessResult:
        """A run of one of the project's jobs, as the sensor launches it (the sensor looks runs up by job name)."""
        definitions = dg.Definitions(
            assets=self.definitions.assets,
            asset_checks=self.definitions.asset_checks,
            jobs=self.definitions.jobs,
            resources=self.resources(argilla),
        )
        return definitions.resolve_job_def(self.job_name(job)).execute_in_process(
            partition_key=partition_key, instance=self.instance, raise_on_error=False, tags=tags
        )

    def sensor_tick(self, cursor=None, argilla=None):
        """One evaluation of the project's sensor, checked against its jobs and the instance's partitions as the daemon
        does."""
        (sensor,) = self.definitions.sensors
        with (
            dg.partition_loading_context(dynamic_partitions_store=self.instance),
            dg.build_sensor_context(
                instance=self.instance,
                cursor=cursor,
                resources={self.project.argilla_resource_key: argilla or self.resource},
                definitions=self.definitions,
            ) as context,
        ):
            # What the sensor logs (`context.log`), kept for the test: Dagster shows it on the tick's page.
            self.sensor_log = []
            context.log.addHandler(_Collect(self.sensor_log))
            return sensor.evaluate_tick(context)

    def plan(self) -> pd.DataFrame:
        return self.materialize(PLAN).output_for_node(self.node("annotation_assignments"))

    def push_all_shards(self, argilla=None) -> dict[str, dg.ExecuteInProcessResult]:
        return {annotator: self.materialize(["annotator_shards"], annotator, argilla) for annotator in self.partitions}

    def push_shards_in_one_run(self, argilla=None) -> dg.ExecuteInProcessResult:
        """Every annotator's shard in one run of the push job, as the quickstart and a backfill of all partitions run it."""
        result = self.run_job(
            "push_shards",
            argilla=argilla,
            tags=every_partition_tags(self.instance, self.project.annotator_partitions),
        )
        assert result.success
        return result

    def refresh(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        result = self.materialize(REFRESH)
        self.last_checks = {check.check_name: check.passed for check in result.get_asset_check_evaluations()}
        return result.output_for_node(self.node("collected_feedback")), result.output_for_node(
            self.node("curated_dolly")
        )

    def node(self, asset: str) -> str:
        """The op name of an asset in a run's results (the key path joined by "__")."""
        return "__".join(self.key(asset).path)


class _Collect(logging.Handler):
    def __init__(self, messages: list[str]):
        super().__init__()
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def metadata_of(result: dg.ExecuteInProcessResult, node: str) -> dict:
    """The metadata of the one materialization a node made in the run, as plain values."""
    (materialization,) = result.asset_materializations_for_node(node)
    return {key: value.value for key, value in materialization.metadata.items()}


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    """Check name → passed, for the checks the run evaluated; a test asserting on checks also asserts there were some."""
    return {check.check_name: check.passed for check in result.get_asset_check_evaluations()}


__all__ = ["ASSET_NAMES", "FAST_RETRIES", "PLAN", "REFRESH", "ProjectOnServer", "check_results", "metadata_of"]
