"""The runs people and the sensor launch, per project."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg

from .project import Project

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition


@dataclass(frozen=True)
class ProjectJobs:
    plan: UnresolvedAssetJobDefinition
    push: UnresolvedAssetJobDefinition
    refresh: UnresolvedAssetJobDefinition

    def all(self) -> list[UnresolvedAssetJobDefinition]:
        return [self.plan, self.push, self.refresh]


def build_jobs(project: Project) -> ProjectJobs:
    key = project.asset_key
    return ProjectJobs(
        # Source → plan: what runs first, before shards exist.
        plan=dg.define_asset_job(
            project.job_name("plan_assignments"),
            selection=dg.AssetSelection.assets(key("raw_dolly"), key("quality_signals"), key("annotation_assignments")),
            description="Load and validate the source, compute its quality signals, then plan which annotator gets which record.",
        ),
        push=dg.define_asset_job(
            project.job_name("push_shards"),
            selection=dg.AssetSelection.assets(key("annotator_shards")),
            description="Push one annotator's share to their Argilla dataset.",
        ),
        refresh=dg.define_asset_job(
            project.job_name("refresh_curation"),
            selection=dg.AssetSelection.assets(key("collected_feedback"), key("change_statistics"), key("curated_dolly")),
            description="Collect responses, chart the changes and publish the curated dataset.",
        ),
    )
