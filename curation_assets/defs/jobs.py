"""The runs people and the sensor launch, per project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from .project import Project

# What a refresh materializes, in the order the data flows.
REFRESHED = (
    "collected_feedback", "change_statistics", "annotator_agreement", "annotator_pace",
    "review_queue", "collected_reviews", "curated_dolly",
)  # fmt: skip

# The tags Dagster puts on a backfill's run over a range of partitions (dagster._core.storage.tags, not exported).
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


@dataclass(frozen=True)
class ProjectJobs:
    plan: UnresolvedAssetJobDefinition
    push: UnresolvedAssetJobDefinition
    refresh: UnresolvedAssetJobDefinition
    push_reviews: UnresolvedAssetJobDefinition

    def all(self) -> list[UnresolvedAssetJobDefinition]:
        return [self.plan, self.push, self.refresh, self.push_reviews]


def every_partition_tags(instance: dg.DagsterInstance, partitions: dg.DynamicPartitionsDefinition) -> dict[str, str]:
    """Run tags that cover every partition in one run: the range from the first partition added to the last.

    For an asset with `BackfillPolicy.single_run()`, such a run materializes each partition of the
    range (Dagster's own tags for a backfill's ranged run); none when there is no partition.
    """
    keys = instance.get_dynamic_partitions(partitions.name)
    if not keys:
        return {}
    return {PARTITION_RANGE_START_TAG: keys[0], PARTITION_RANGE_END_TAG: keys[-1]}


def build_jobs(project: Project) -> ProjectJobs:
    key = project.asset_key
    return ProjectJobs(
        # Source → plan: what runs first, before shards exist.
        plan=dg.define_asset_job(
            project.job_name("plan_assignments"),
            selection=dg.AssetSelection.assets(key("raw_dolly"), key("quality_signals"), key("annotation_assignments")),
            # Each step needs the one before; in the run's own process they skip a Python start and an import of the
            # code per step (as the refresh does, below).
            executor_def=dg.in_process_executor,
            description="Load and validate the source, compute its quality signals, then plan which annotator gets which record.",
        ),
        push=dg.define_asset_job(
            project.job_name("push_shards"),
            selection=dg.AssetSelection.assets(key("annotator_shards")),
            executor_def=dg.in_process_executor,  # one step: a process of its own would only add a start
            description=(
                "Push annotators' shares to their Argilla datasets: one partition, or a range of them in one run "
                "(each partition materialized with its own metadata)."
            ),
        ),
        refresh=dg.define_asset_job(
            project.job_name("refresh_curation"),
            selection=dg.AssetSelection.assets(*(key(name) for name in REFRESHED)),
            # Its steps run one after another anyway (each needs the one before): in the run's own process they skip
            # a Python start and an import of the code per step, seconds each (bench/freshness.py).
            executor_def=dg.in_process_executor,
            description=(
                "Collect responses and reviews, chart the changes, measure agreement and pace, "
                "queue disagreements for review, and publish the curated dataset."
            ),
        ),
        push_reviews=dg.define_asset_job(
            project.job_name("push_reviews"),
            selection=dg.AssetSelection.assets(key("review_shards")),
            description="Push one reviewer's disagreements to their review dataset.",
        ),
    )
