"""The asset checks' comparisons, column-wise, against the set-based rules they replaced (written out here)."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.logic.plan_checks import placement_against_plan, plan_coverage

RECORDS = [f"r{number}" for number in range(8)]
ANNOTATORS = ["ana", "bruno", "chen"]


def coverage_by_sets(plan: pd.DataFrame, source_ids: pd.Series, annotators_per_record: int) -> dict:
    """The check as it was: groupby per id, Python sets."""
    same_annotator_twice = sorted(plan.loc[plan.duplicated(["id", "annotator"]), "id"].unique())
    wanted = plan.groupby("id")["overlap"].first().map({True: annotators_per_record, False: 1})
    held = plan.groupby("id").size()
    unlocked = plan[~plan["locked"]].groupby("id").size().reindex(held.index, fill_value=0)
    return {
        "same_annotator_twice": same_annotator_twice,
        "fewer_annotators_than_planned": sorted(held.index[(held < wanted) & (held < len(set(plan["annotator"])))]),
        "more_annotators_than_planned": sorted(
            held.index[(held > wanted) & (unlocked > 0) & (held - unlocked < wanted)]
        ),
        "unassigned": sorted(set(source_ids) - set(plan["id"])),
        "unknown": sorted(set(plan["id"]) - set(source_ids)),
    }


def placement_by_sets(keys: pd.DataFrame, plan: pd.DataFrame) -> dict:
    placed = set(zip(keys["record_id"], keys["shard"]))
    planned = set(zip(plan["id"], plan["annotator"]))
    planned_ids = set(plan["id"])
    return {
        "missing": sorted(planned - placed),
        "unplanned": sorted((record, shard) for record, shard in placed - planned if record in planned_ids),
        "held_twice": sorted(
            {f"{record} in {shard}" for record, shard, _ in keys[keys.duplicated()].itertuples(False)}
        ),
    }


plan_rows = st.lists(
    st.tuples(st.sampled_from(RECORDS), st.sampled_from(ANNOTATORS), st.booleans(), st.booleans()), max_size=20
)


def as_text(frame: pd.DataFrame, columns: list[str], arrow: bool) -> pd.DataFrame:
    """The frame with its text columns as Arrow strings or Python objects, and its flags as booleans when it is empty."""
    flags = {column: bool for column in ("overlap", "locked") if column in frame}
    return frame.astype({**{column: "str" if arrow else object for column in columns}, **flags})


@given(
    rows=plan_rows,
    source=st.lists(st.sampled_from([*RECORDS, "r8", "r9"]), unique=True),
    per_record=st.integers(1, 3),
    arrow=st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_plan_coverage_finds_what_the_set_based_check_found(rows, source, per_record, arrow):
    plan = as_text(pd.DataFrame(rows, columns=["id", "annotator", "overlap", "locked"]), ["id", "annotator"], arrow)
    source_ids = pd.Series(source, dtype="str" if arrow else object)
    coverage = plan_coverage(plan, source_ids, per_record)
    expected = coverage_by_sets(plan, source_ids, per_record)
    assert {name: getattr(coverage, name) for name in expected} == expected
    assert coverage.passed == (not any(expected.values()))


@given(
    rows=plan_rows,
    held=st.lists(
        st.tuples(st.sampled_from([*RECORDS, "r9"]), st.sampled_from(ANNOTATORS), st.sampled_from(ANNOTATORS)),
        max_size=20,
    ),
    plan_arrow=st.booleans(),
    keys_arrow=st.booleans(),  # the plan and the feedback need not hold text the same way
)
@settings(max_examples=200, deadline=None)
def test_placement_finds_what_the_set_based_check_found(rows, held, plan_arrow, keys_arrow):
    plan = as_text(
        pd.DataFrame(rows, columns=["id", "annotator", "overlap", "locked"]), ["id", "annotator"], plan_arrow
    )
    keys = pd.DataFrame(held, columns=["record_id", "shard", "annotator"])
    keys = as_text(keys, ["record_id", "shard", "annotator"], keys_arrow)
    placement = placement_against_plan(keys, plan)
    expected = placement_by_sets(keys, plan)
    assert {
        "missing": placement.missing,
        "unplanned": placement.unplanned,
        "held_twice": placement.held_twice,
    } == expected
    assert placement.passed == (not any(expected.values()))


def test_an_empty_feedback_read_back_without_text_types_is_compared_with_a_text_plan():
    # collected_feedback before anything was pushed, as parquet gives it back: columns with no values and no text type.
    nothing = pd.DataFrame({"record_id": [], "shard": [], "annotator": []}, dtype=float)
    plan = as_text(
        pd.DataFrame([("r1", "ana", False, False)], columns=["id", "annotator", "overlap", "locked"]),
        ["id", "annotator"],
        True,
    )
    placement = placement_against_plan(nothing, plan)
    assert placement.missing == [("r1", "ana")] and not placement.passed
