"""Quality control of the people as plain functions: overlap plans, agreement figures, disagreements, policies, pace."""

import math
import random

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.logic.agreement import (
    _answers_by_record,
    cohen_kappa,
    compute_agreement,
    kappa_interval,
    krippendorff_alpha,
    wilson_interval,
)
from curation_assets.logic.assignment import overlap_records, plan_team_assignments
from curation_assets.logic.curation import HOLD_OUT, MAJORITY, ReviewPolicy, curate
from curation_assets.logic.pace import compute_pace, readable_eta
from curation_assets.logic.review import Version, assign_reviewers, find_disagreements, versions_by_record
from curation_assets.logic.shard_sync import spread_through_queue

TEAM = ["ana", "bruno", "chen", "dora"]


# -- overlap ----------------------------------------------------------------------------------


@given(
    ids=st.lists(st.integers(0, 5000).map(str), min_size=1, max_size=200, unique=True),
    team=st.lists(st.sampled_from(TEAM), min_size=2, max_size=4, unique=True),
    share=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
    k=st.integers(2, 4),
    seed=st.integers(0, 100),
)
@settings(max_examples=150, deadline=None)
def test_overlap_share_and_k_are_exact_and_nobody_gets_a_record_twice(ids, team, share, k, seed):
    plan = plan_team_assignments(ids, team, seed=seed, overlap_share=share, annotators_per_overlap_record=k)
    assert not plan.duplicated(["id", "annotator"]).any(), "no annotator gets a record twice"
    holders = plan.groupby("id")["annotator"].nunique()
    overlapping = set(plan.loc[plan["overlap"], "id"])
    assert len(overlapping) == round(share * len(ids)), "the share is exact"
    wanted = min(k, len(team))
    assert all(holders[record] == (wanted if record in overlapping else 1) for record in ids), "k is exact"
    assert (plan.loc[~plan["copy"], "id"].value_counts() == 1).all(), "every record has one primary annotator"
    loads = plan["annotator"].value_counts().reindex(team, fill_value=0)
    assert loads.max() - loads.min() <= 1 + (1 if share else 0), "the extra copies keep the team balanced"


@given(
    ids=st.lists(st.integers(0, 5000).map(str), min_size=5, max_size=120, unique=True),
    before=st.lists(st.sampled_from(TEAM), min_size=2, max_size=4, unique=True),
    after=st.lists(st.sampled_from(TEAM), min_size=2, max_size=4, unique=True),
    data=st.data(),
)
@settings(max_examples=150, deadline=None)
def test_a_re_plan_keeps_every_answered_copy_where_it_is(ids, before, after, data):
    first = plan_team_assignments(ids, before, overlap_share=0.4)
    placements: dict[str, set[str]] = {}
    for record_id, annotator in zip(first["id"], first["annotator"]):
        placements.setdefault(record_id, set()).add(annotator)
    pairs = list(zip(first["id"], first["annotator"]))
    answered = set(data.draw(st.lists(st.sampled_from(pairs), unique=True, max_size=len(pairs))))
    second = plan_team_assignments(ids, after, placements=placements, answered_pairs=answered, overlap_share=0.4)
    kept = set(zip(second["id"], second["annotator"]))
    assert answered <= kept, "an answered (record, annotator) pair never moves, whoever left"
    assert not second.duplicated(["id", "annotator"]).any()
    unlocked = second[~second["locked"]]
    assert set(unlocked["annotator"]) <= set(after), "untouched records only go to the current team"


def test_the_overlap_share_is_chosen_by_id_not_by_order():
    ids = [str(i) for i in range(300)]
    assert overlap_records(ids, 0.1, seed=3) == overlap_records(ids[::-1], 0.1, seed=3)
    assert len(overlap_records(ids, 0.1, seed=3)) == 30 and overlap_records(ids, 0.1, 3) != overlap_records(ids, 0.1, 4)


def test_overlap_records_are_spread_evenly_through_the_queue():
    queue = pd.DataFrame({"id": [str(i) for i in range(100)]})
    spread = {str(i) for i in range(80, 100)}  # bunched at the end before
    order = list(spread_through_queue(queue, spread, priority={})["id"])
    positions = [order.index(record) for record in sorted(spread, key=order.index)]
    assert max(b - a for a, b in zip(positions, positions[1:])) <= 6 and positions[0] < 6 and positions[-1] > 93
    flagged = spread_through_queue(queue, spread, priority={"3": 2, "90": 2})
    assert list(flagged["id"][:2]) == ["3", "90"], "higher priority still comes first"


# -- agreement against hand computations ----------------------------------------------------------


def test_cohen_kappa_wilson_and_alpha_equal_hand_computations():
    # 50 items: both yes 20, a yes b no 5, a no b yes 10, both no 15. p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5.
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    low, high = wilson_interval(35, 50)
    assert (round(low, 3), round(high, 3)) == (0.562, 0.809)
    kappa_low, kappa_high = kappa_interval(a, b)
    assert kappa_low < 0.4 < kappa_high and kappa_high - kappa_low < 0.6
    assert cohen_kappa(["y", "y"], ["y", "y"]) is None, "undefined when chance agreement is total"
    # Units [a,a], [a,b], [b,b], [b,b]: n_a = 3, n_b = 5, n = 8, o_ab + o_ba = 2: alpha = 1 - 7·2 / (2·3·5).
    assert krippendorff_alpha([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]) == pytest.approx(1 - 14 / 30)
    assert krippendorff_alpha([["a", "a", "a"], ["b", "b", "b"]]) == pytest.approx(1.0)


def answer(record_id, annotator, status, response="R.", minute=0):
    submitted = status == "submitted"
    return {
        "record_id": record_id, "shard": annotator, "annotator": annotator, "status": status,
        "new_instruction": "Q?" if submitted else None, "new_input": None, "new_response": response if submitted else None,
        "instruction": "Q?", "context": "", "response": "R.", "category": "open_qa",
        "inserted_at": pd.Timestamp("2026-11-30 10:00", tz="UTC") + pd.Timedelta(minutes=minute),
        "updated_at": pd.Timestamp("2026-11-30 10:00", tz="UTC") + pd.Timedelta(minutes=minute),
    }  # fmt: skip


def test_agreement_tables_on_a_fixture_with_known_agreement():
    rows = []
    for i in range(10):  # ana and bruno agree on 8 decisions of 10: ana discards 1 and 2, bruno submits them
        rows.append(answer(str(i), "ana", "discarded" if i in (1, 2) else "submitted"))
        rows.append(answer(str(i), "bruno", "submitted"))
    rows.append(answer("solo", "ana", "submitted"))
    tables = compute_agreement(pd.DataFrame(rows))
    assert tables.records == 10
    (pair,) = tables.pairs.to_dict("records")
    assert (pair["annotator_a"], pair["annotator_b"], pair["shared_records"]) == ("ana", "bruno", 10)
    assert pair["decision_agreement"] == 0.8 and pair["both_submitted"] == 8
    # bruno always submits: chance agreement equals the observed, kappa 0.
    assert pair["decision_kappa"] == 0.0 and pair["response_similarity"] == 1.0
    people = tables.annotators.set_index("annotator")
    assert people.loc["ana", "outcome_agreement"] == 0.8 and people.loc["ana", "shared_records"] == 10
    assert not people["outlier"].any(), "two annotators: nobody is an outlier against a single other"


def test_simulated_annotators_with_a_set_disagreement_rate_give_the_expected_kappa():
    randomness = random.Random(1)
    rows = []
    for i in range(600):
        truth = "submitted" if randomness.random() < 0.6 else "discarded"
        for annotator in ("ana", "bruno"):
            flip = randomness.random() < 0.1  # each errs on 10% of records
            status = ("discarded" if truth == "submitted" else "submitted") if flip else truth
            rows.append(answer(str(i), annotator, status))
    (pair,) = compute_agreement(pd.DataFrame(rows)).pairs.to_dict("records")
    # Expected observed agreement 0.9² + 0.1² = 0.82; with 60/40 prevalence (blurred by errors) kappa ≈ 0.62.
    assert 0.78 < pair["decision_agreement"] < 0.86
    assert (
        0.52 < pair["decision_kappa"] < 0.72
        and pair["decision_kappa_low"] < pair["decision_kappa"] < pair["decision_kappa_high"]
    )


def test_an_annotator_who_disagrees_with_everyone_is_an_outlier():
    rows = []
    for i in range(12):
        for annotator in ("ana", "bruno", "chen"):
            rows.append(answer(str(i), annotator, "submitted"))
        rows.append(answer(str(i), "dora", "discarded"))
    people = compute_agreement(pd.DataFrame(rows)).annotators.set_index("annotator")
    assert people["outlier"].to_dict() == {"ana": False, "bruno": False, "chen": False, "dora": True}


# -- disagreements, reviewers, policies ------------------------------------------------------------


def disagreeing_feedback() -> pd.DataFrame:
    return pd.DataFrame(
        [
            answer("agree", "ana", "submitted", "Paris is the capital of France."),
            answer("agree", "bruno", "submitted", "Paris is the capital of France. "),
            answer("split", "ana", "submitted", "Keep it."),
            answer("split", "bruno", "discarded"),
            answer("texts", "ana", "submitted", "The capital of France is Paris, on the Seine."),
            answer("texts", "bruno", "submitted", "No idea."),
            answer("texts", "chen", "submitted", "The capital of France is Paris, by the Seine."),
        ]
    )


def test_disagreements_are_found_with_a_reason_and_the_closest_version():
    found = find_disagreements(disagreeing_feedback(), threshold=0.8).set_index("record_id")
    assert sorted(found.index) == ["split", "texts"], "whitespace alone is no disagreement"
    assert found.loc["split", "reason"] == "1 discarded vs 1 submitted"
    assert "different response" in found.loc["texts", "reason"]
    assert found.loc["texts", "closest"] in ("ana", "chen") and found.loc["split", "closest"] == "ana"
    assert found.loc["texts", "prefill"]["new_response"].startswith("The capital of France is Paris")


def test_versions_come_by_record_then_annotator_with_each_ones_latest_answer():
    feedback = pd.DataFrame(
        [
            answer("b", "chen", "submitted", "  Late   answer. ", minute=5),
            answer("b", "ana", "discarded", minute=1),
            answer("b", "chen", "submitted", "Early answer.", minute=2),
            answer("a", "bruno", "submitted", "Bruno's."),
            answer("a", "ana", "submitted", "Ana's."),
            answer("c", "ana", "submitted", "Alone."),
            answer("b", "dan", "draft", minute=9),
        ]
    )
    versions = versions_by_record(feedback)
    assert list(versions) == ["a", "b"], "records only one annotator finished are left out"
    assert versions["a"] == [
        Version("ana", "submitted", {"instruction": "Q?", "input": "", "response": "Ana's."}),
        Version("bruno", "submitted", {"instruction": "Q?", "input": "", "response": "Bruno's."}),
    ]
    assert [(version.annotator, version.status) for version in versions["b"]] == [
        ("ana", "discarded"),
        ("chen", "submitted"),
    ]
    assert versions["b"][1].texts["response"] == "Late answer.", "the latest answer, normalised"


def test_answers_by_record_are_what_a_frame_per_record_gave():
    versions = pd.DataFrame(
        {"record_id": ["b", "a", None, "b", "c", "a", "a"], "annotator": list("xyzwvut"), "minute": range(7)}
    )
    for ids in (versions, versions.astype({"record_id": object})):
        expected = {
            record_id: group.to_dict("records") for record_id, group in ids.groupby("record_id") if len(group) > 1
        }
        found = _answers_by_record(ids)
        assert found == expected and list(found) == list(expected) == ["a", "b"]


def test_reviewers_get_records_they_did_not_answer_balanced_and_stable():
    found = find_disagreements(disagreeing_feedback(), threshold=0.8)
    assigned = dict(assign_reviewers(found, ["ana", "rita"], seed=1, previous={}, answered=set()).values)
    assert assigned == {"split": "rita", "texts": "rita"}, "ana answered both: rita reviews them"
    both = dict(assign_reviewers(found, ["rita", "sam"], seed=1, previous={}, answered=set()).values)
    assert sorted(both.values()) == ["rita", "sam"]
    kept = dict(assign_reviewers(found, ["rita", "sam"], seed=2, previous=both, answered=set()).values)
    assert kept == both, "a review in progress stays with its reviewer"


def test_adjudicated_records_are_published_with_the_reviewer_and_waiting_ones_follow_the_policy():
    feedback = disagreeing_feedback()
    adjudications = pd.DataFrame(
        [{"record_id": "texts", "reviewer": "rita", "verdict": "accept", "new_instruction": "Q?", "new_input": "",
          "new_response": "Paris, the capital of France.", "updated_at": None}]
    )  # fmt: skip
    held = curate(feedback, adjudications, ReviewPolicy(0.8, HOLD_OUT)).set_index("id")
    assert sorted(held.index) == ["agree", "texts"], "the unreviewed disagreement is held out"
    assert held.loc["texts", "provenance"] == "adjudicated" and held.loc["texts", "annotator"] == "rita"
    assert held.loc["texts", "response"] == "Paris, the capital of France."
    by_majority = curate(feedback, None, ReviewPolicy(0.8, MAJORITY)).set_index("id")
    assert by_majority.loc["texts", "provenance"] == "majority", "3 submitted: the closest version stands"
    assert "split" not in by_majority.index, "a 1-1 tie between submit and discard is left out"
    assert math.isclose(len(curate(feedback)), 1), "no review and the default policy: only the agreeing record"


# -- pace -----------------------------------------------------------------------------------------


def test_pace_recovers_the_intervals_and_cuts_breaks():
    rows = [answer(str(i), "ana", "submitted", minute=2 * i) for i in range(6)]  # every 2 minutes ...
    rows += [answer("late", "ana", "submitted", minute=10 + 60)]  # ... then a one-hour break
    rows += [answer(str(i), "bruno", "discarded", minute=i) for i in range(0, 30, 3)]  # every 3 minutes
    rows += [{**answer("todo", "ana", "pending"), "updated_at": pd.NaT}]
    pace = compute_pace(pd.DataFrame(rows), pause_minutes=10).pace.set_index("annotator")
    assert pace.loc["ana", "median_seconds_per_record"] == 120.0 and pace.loc["ana", "answers"] == 7
    assert pace.loc["ana", "answers_per_hour"] == 30.0, "the hour-long break is not counted as work"
    assert pace.loc["bruno", "median_seconds_per_record"] == 180.0 and pace.loc["bruno", "answers_per_hour"] == 20.0
    assert pace.loc["ana", "records_left"] == 1 and pace.loc["ana", "eta_hours"] == round(120 / 3600, 2)


@pytest.mark.parametrize(
    ("hours", "reads"),
    [
        (None, "unknown until someone has answered twice"),
        (float("nan"), "unknown until someone has answered twice"),
        (0.001, "under a minute"),
        (0.25, "about 15 min"),
        (3.04, "about 3.0 h"),
    ],
)
def test_the_eta_reads_in_minutes_under_an_hour(hours, reads):
    assert readable_eta(hours) == reads
