"""Asset checks: the plan covers every record once, and Argilla holds what the plan says."""

import dagster as dg
import pandas as pd

from ..logic.plan_checks import placement_against_plan, plan_coverage
from .project import Project


def build_checks(project: Project) -> list[dg.AssetChecksDefinition]:
    overlap = project.settings.annotation.overlap

    @dg.asset_check(
        asset=project.asset_key("annotation_assignments"),
        additional_ins={"raw_dolly": dg.AssetIn(project.asset_key("raw_dolly"))},
    )
    def every_record_assigned_as_planned(
        annotation_assignments: pd.DataFrame, raw_dolly: pd.DataFrame
    ) -> dg.AssetCheckResult:
        """Every valid record goes to one annotator (or to k different ones, for the overlap share), and the plan names no
        unknown record."""
        coverage = plan_coverage(annotation_assignments, raw_dolly["id"], overlap.annotators_per_record)
        return dg.AssetCheckResult(
            passed=coverage.passed,
            metadata={
                "same_annotator_twice": dg.MetadataValue.json(coverage.same_annotator_twice[:50]),
                "fewer_annotators_than_planned": dg.MetadataValue.json(coverage.fewer_annotators_than_planned[:50]),
                "more_annotators_than_planned": dg.MetadataValue.json(coverage.more_annotators_than_planned[:50]),
                "unassigned": dg.MetadataValue.json(coverage.unassigned[:50]),
                "unknown_ids": dg.MetadataValue.json(coverage.unknown[:50]),
            },
        )

    @dg.asset_check(
        asset=project.asset_key("collected_feedback"),
        additional_ins={"annotation_assignments": dg.AssetIn(project.asset_key("annotation_assignments"))},
    )
    def argilla_matches_plan(
        collected_feedback: pd.DataFrame, annotation_assignments: pd.DataFrame
    ) -> dg.AssetCheckResult:
        """Each planned record sits in each of its annotators' datasets once; no dataset holds a record the plan does not
        give it."""
        # The keys alone, not a copy of every text.
        placement = placement_against_plan(
            collected_feedback[["record_id", "shard", "annotator"]], annotation_assignments
        )
        return dg.AssetCheckResult(
            passed=placement.passed,
            description="A failure right after a plan change means the shards have not been pushed yet.",
            metadata={
                "planned_but_not_in_argilla": len(placement.missing),
                "in_argilla_but_not_planned": len(placement.unplanned),
                "held_twice_by_one_annotator": len(placement.held_twice),
                "examples": dg.MetadataValue.json(
                    (
                        [f"{record} in {shard}" for record, shard in placement.missing + placement.unplanned]
                        + placement.held_twice
                    )[:20]
                ),
            },
        )

    return [every_record_assigned_as_planned, argilla_matches_plan]
