"""Asset checks: the plan covers every record once, and Argilla holds what the plan says."""

import dagster as dg
import pandas as pd

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
        plan = annotation_assignments
        same_annotator_twice = sorted(plan.loc[plan.duplicated(["id", "annotator"]), "id"].unique())
        wanted = plan.groupby("id")["overlap"].first().map({True: overlap.annotators_per_record, False: 1})
        held = plan.groupby("id").size()
        # More holders than wanted only where answers pin the extra copies (a record answered before the plan changed).
        unlocked = plan[~plan["locked"]].groupby("id").size().reindex(held.index, fill_value=0)
        short = sorted(held.index[(held < wanted) & (held < len(set(plan["annotator"])))])
        extra = sorted(held.index[(held > wanted) & (unlocked > 0) & (held - unlocked < wanted)])
        unassigned = sorted(set(raw_dolly["id"]) - set(plan["id"]))
        unknown = sorted(set(plan["id"]) - set(raw_dolly["id"]))
        return dg.AssetCheckResult(
            passed=not (same_annotator_twice or short or extra or unassigned or unknown),
            metadata={
                "same_annotator_twice": dg.MetadataValue.json(same_annotator_twice[:50]),
                "fewer_annotators_than_planned": dg.MetadataValue.json(short[:50]),
                "more_annotators_than_planned": dg.MetadataValue.json(extra[:50]),
                "unassigned": dg.MetadataValue.json(unassigned[:50]),
                "unknown_ids": dg.MetadataValue.json(unknown[:50]),
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
        placed = set(zip(collected_feedback["record_id"], collected_feedback["shard"]))
        planned = set(zip(annotation_assignments["id"], annotation_assignments["annotator"]))
        keys = collected_feedback[["record_id", "shard", "annotator"]]  # the keys alone, not a copy of every text
        # The same (record, dataset, annotator) twice: the dataset holds the record twice (one row per copy).
        held_twice = sorted({f"{record} in {shard}" for record, shard, _ in keys[keys.duplicated()].itertuples(False)})
        missing = sorted(planned - placed)
        # Answered records outside the plan (a replaced source's) stay where their answers are: not a mismatch.
        planned_ids = set(annotation_assignments["id"])
        unplanned = sorted((record, shard) for record, shard in placed - planned if record in planned_ids)
        return dg.AssetCheckResult(
            passed=not (missing or unplanned or held_twice),
            description="A failure right after a plan change means the shards have not been pushed yet.",
            metadata={
                "planned_but_not_in_argilla": len(missing),
                "in_argilla_but_not_planned": len(unplanned),
                "held_twice_by_one_annotator": len(held_twice),
                "examples": dg.MetadataValue.json(
                    ([f"{record} in {shard}" for record, shard in missing + unplanned] + held_twice)[:20]
                ),
            },
        )

    return [every_record_assigned_as_planned, argilla_matches_plan]
