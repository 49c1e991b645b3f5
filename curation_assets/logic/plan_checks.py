"""What the asset checks compare: the plan against the source, and what Argilla holds against the plan.

Column-wise: at 1,000,000 records a Python set of (record, annotator) pairs, or a groupby per id
on text, took seconds per check (`bench/processing_path.py`); ids are numbered once
(`pd.factorize`) and counted with numpy, and pairs are compared as integers. Ids are never
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
    (record_codes, planned_id_codes), record_ids = _numbered(feedback_keys["record_id"], plan["id"])
    (shard_codes, planned_annotator_codes, annotator_codes), names = _numbered(
        feedback_keys["shard"], plan["annotator"], feedback_keys["annotator"]
    )
    # One integer per (record, dataset) pair and per (record, dataset, annotator): numbers + 1, so a missing value (-1)
    # is a number too, in a base wider than any name's number.
    base = len(names) + 1
    placed_pairs = (record_codes + 1) * base + shard_codes + 1
    planned_pairs = _sorted_unique((planned_id_codes + 1) * base + planned_annotator_codes + 1)
    placed_unique = _sorted_unique(placed_pairs)
    unplanned = np.setdiff1d(placed_unique, planned_pairs, assume_unique=True)
    # Answered records outside the plan (a replaced source's) stay where their answers are: only planned records count.
    unplanned = unplanned[np.isin(unplanned // base, planned_pairs // base)]
    # The same (record, dataset, annotator) twice: the dataset holds the record twice (one row per copy).
    twice = pd.Series(placed_pairs * base + annotator_codes + 1).duplicated().to_numpy()
    held_twice = sorted({f"{record} in {shard}" for record, shard in zip(
        feedback_keys["record_id"][twice], feedback_keys["shard"][twice])})  # fmt: skip

    def decoded(pairs: np.ndarray) -> list[tuple[str, str]]:
        return sorted(zip(_named(record_ids, pairs // base - 1), _named(names, pairs % base - 1)))

    return Placement(
        missing=decoded(np.setdiff1d(planned_pairs, placed_unique, assume_unique=True)),
        unplanned=decoded(unplanned),
        held_twice=held_twice,
    )


def _numbered(*columns: pd.Series) -> tuple[list[np.ndarray], np.ndarray]:
    """Each column's values as numbers of one numbering shared by all of them (equal text, equal number; -1 where a
    value is missing), and the text of each number. As Arrow text: one hash pass over every column, no Python string."""
    joined = pd.concat([column.astype("str") for column in columns], ignore_index=True)
    codes, values = pd.factorize(joined)
    bounds = np.cumsum([len(column) for column in columns])[:-1]
    return np.split(np.asarray(codes, dtype=np.int64), bounds), np.asarray(values, dtype=object)


def _sorted_unique(numbers: np.ndarray) -> np.ndarray:
    """`np.unique(numbers)` by a sort: numpy 2.4's hash-based unique took 0.7 s for 1,100,000 integers here, a sort 0.1 s."""
    ordered = np.sort(numbers)
    return ordered[np.concatenate([[True], ordered[1:] != ordered[:-1]])] if len(ordered) else ordered


def _named(values: np.ndarray, codes: np.ndarray) -> list:
    """The text of each number (None for a missing value's -1)."""
    return [values[code] if code >= 0 else None for code in codes]
