"""Asset checks: the plan covers every record once, and Argilla holds what the plan says."""

import dagster as dg
import pandas as pd

from .project import Project


def build_checks(project: Project) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset=project.asset_key("annotation_assignments"),
        additional_ins={"raw_dolly": dg.AssetIn(project.asset_key("raw_dolly"))},
    )
    def every_record_assigned_exactly_once(annotation_assignments: pd.DataFrame, raw_dolly: pd.DataFrame) -> dg.AssetCheckResult:
        """Every valid record has exactly one annotator, and the plan names no unknown record."""
        counts = annotation_assignments["id"].value_counts()
        overlapping = sorted(counts[counts > 1].index)
        unassigned = sorted(set(raw_dolly["id"]) - set(annotation_assignments["id"]))
        unknown = sorted(set(annotation_assignments["id"]) - set(raw_dolly["id"]))
        return dg.AssetCheckResult(
            passed=not (overlapping or unassigned or unknown),
            metadata={
                "assigned_twice": dg.MetadataValue.json(overlapping[:50]),
                "unassigned": dg.MetadataValue.json(unassigned[:50]),
                "unknown_ids": dg.MetadataValue.json(unknown[:50]),
            },
        )

    @dg.asset_check(
        asset=project.asset_key("collected_feedback"),
        additional_ins={"annotation_assignments": dg.AssetIn(project.asset_key("annotation_assignments"))},
    )
    def argilla_matches_plan(collected_feedback: pd.DataFrame, annotation_assignments: pd.DataFrame) -> dg.AssetCheckResult:
        """Each planned record sits in its annotator's dataset once; no record is in two datasets."""
        placed = collected_feedback.drop_duplicates(["record_id", "shard"])[["record_id", "shard"]]
        in_two = sorted(placed.loc[placed["record_id"].duplicated(), "record_id"].unique())
        actual = dict(zip(placed["record_id"], placed["shard"]))
        planned = zip(annotation_assignments["id"], annotation_assignments["annotator"])
        misplaced = sorted(record_id for record_id, annotator in planned if actual.get(record_id) != annotator)
        return dg.AssetCheckResult(
            passed=not (in_two or misplaced),
            description="A failure right after a plan change means the shards have not been pushed yet.",
            metadata={
                "records_in_two_datasets": dg.MetadataValue.json(in_two[:50]),
                "records_not_where_planned": len(misplaced),
                "examples": dg.MetadataValue.json(misplaced[:20]),
            },
        )

    return [every_record_assigned_exactly_once, argilla_matches_plan]
