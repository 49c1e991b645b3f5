"""What the asset checks compare: the plan against the source, and what Argilla holds against the plan.

Column-wise: at 1,000,000 records a Python set of (record, annotator) pairs, or a groupby per id
on text, took seconds per check (`bench/processing_path.py`); ids are numbered once
(`pd.factorize`) and counted with numpy, and pairs are compared by one merge. Ids are never
missing here (`raw_dolly` quarantines such rows); where one is, it is left out of the counts as a
groupby leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ids import ids_in


@dataclass(frozen=True)
class PlanCoverage:
    """Ids the plan gets wrong, each list sorted."""

    same_annotator_twice: list[str]  # one annotator holds the record twice
    fewer_annotators_than_planned: list[str]
    more_annotators_than_planned: list[str]  # beyond what answers given before a plan change pin
    unassigned: list[str]  # valid source records nobody holds
    unknown: list[str]  # planned records the source does not have

    @property
    def passed(self) -> bool:
        return not (
            self.same_annotator_twice
            or self.fewer_annotators_than_planned
            or self.more_annotators_than_planned
            or self.unassigned
            or self.unknown
        )


def plan_coverage(plan: pd.DataFrame, source_ids: pd.Series, annotators_per_record: int) -> PlanCoverage:
    """Every source record goes to one annotator (or to `annotators_per_record` different ones, for the overlap share),
    and the plan names no unknown record.

    `plan`: one row per (id, annotator), with `overlap` (the record is in the overlap share) and
    `locked` (answers pin the copy where it is).
    """
    codes, ids = pd.factorize(plan["id"])  # a missing id (-1) is counted nowhere, as a groupby leaves it out
    codes = np.asarray(codes)
    ids = np.asarray(ids, dtype=object)
    numbered = codes >= 0
    held = np.bincount(codes[numbered], minlength=len(ids))
    unlocked = np.bincount(codes[numbered & ~plan["locked"].to_numpy(dtype=bool)], minlength=len(ids))
    numbers, first_rows = np.unique(codes, return_index=True)
    wanted = np.where(plan["overlap"].to_numpy(dtype=bool)[first_rows[numbers >= 0]], annotators_per_record, 1)
    team_size = plan["annotator"].nunique(dropna=False)
    return PlanCoverage(
        same_annotator_twice=sorted(plan.loc[plan.duplicated(["id", "annotator"]), "id"].unique()),
        fewer_annotators_than_planned=sorted(ids[(held < wanted) & (held < team_size)]),
        # More holders than wanted only where answers pin the extra copies (a record answered before the plan changed).
        more_annotators_than_planned=sorted(ids[(held > wanted) & (unlocked > 0) & (held - unlocked < wanted)]),
        unassigned=sorted(set(source_ids[~ids_in(source_ids, plan["id"]).to_numpy()])),
        unknown=sorted(set(plan["id"][~ids_in(plan["id"], source_ids).to_numpy()])),
    )


@dataclass(frozen=True)
class Placement:
    """Where Argilla's records differ from the plan, each list sorted."""

    missing: list[tuple[str, str]]  # (record, annotator) planned, not in that annotator's dataset
    unplanned: list[tuple[str, str]]  # (record, dataset) a dataset holds that the plan gives to someone else
    held_twice: list[str]  # "record in dataset": one dataset holds the record twice

    @property
    def passed(self) -> bool:
        return not (self.missing or self.unplanned or self.held_twice)


def placement_against_plan(feedback_keys: pd.DataFrame, plan: pd.DataFrame) -> Placement:
    """Each planned record sits in each of its annotators' datasets once; no dataset holds a record the plan does not give
    it. Answered records outside the plan (a replaced source's) stay where their answers are: not a mismatch.

    `feedback_keys`: `record_id`, `shard`, `annotator` of each collected row (one per record, dataset and annotator).
    """
    # The same (record, dataset, annotator) twice: the dataset holds the record twice (one row per copy).
    twice = feedback_keys[feedback_keys.duplicated()]
    held_twice = sorted({f"{record} in {shard}" for record, shard in zip(twice["record_id"], twice["shard"])})
    # Both sides as Arrow text: a merge refuses keys of different types (an empty feedback read back holds no text).
    placed = pd.DataFrame({"id": feedback_keys["record_id"], "annotator": feedback_keys["shard"]}, dtype="str")
    placed = placed.drop_duplicates()
    planned = plan[["id", "annotator"]].astype("str").drop_duplicates()
    both = planned.merge(placed, on=["id", "annotator"], how="outer", indicator=True)
    missing = both[both["_merge"] == "left_only"]
    unplanned = both[both["_merge"] == "right_only"]
    unplanned = unplanned[ids_in(unplanned["id"], planned["id"]).to_numpy()]
    return Placement(
        missing=sorted(zip(missing["id"], missing["annotator"])),
        unplanned=sorted(zip(unplanned["id"], unplanned["annotator"])),
        held_twice=held_twice,
    )
