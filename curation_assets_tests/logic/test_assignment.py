"""Assignment: seeded, complete, disjoint, balanced, and stable when annotators join or leave."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from curation_assets.logic.assignment import plan_assignments

ids_strategy = st.lists(st.integers(0, 10_000).map(str), min_size=0, max_size=300, unique=True)
team_strategy = st.lists(
    st.sampled_from(["ana", "bruno", "chen", "dora", "eli", "finn"]), min_size=1, max_size=6, unique=True
)


@given(ids=ids_strategy, team=team_strategy, seed=st.integers(0, 1000))
@settings(max_examples=200, deadline=None)
def test_every_record_exactly_once_balanced_and_order_independent(ids, team, seed):
    plan = plan_assignments(ids, team, seed=seed)
    assert sorted(plan["id"]) == sorted(ids)
    sizes = plan["annotator"].value_counts().reindex(team, fill_value=0)
    assert sizes.max() - sizes.min() <= 1
    shuffled = plan_assignments(list(reversed(ids)), list(reversed(team)), seed=seed)
    assert dict(zip(plan["id"], plan["annotator"])) == dict(zip(shuffled["id"], shuffled["annotator"]))


@given(ids=ids_strategy, before=team_strategy, after=team_strategy, seed=st.integers(0, 1000), data=st.data())
@settings(max_examples=200, deadline=None)
def test_team_changes_never_move_answered_records_and_move_few_others(ids, before, after, seed, data):
    first = plan_assignments(ids, before, seed=seed)
    previous = dict(zip(first["id"], first["annotator"]))
    answered = set(data.draw(st.lists(st.sampled_from(ids), unique=True)) if ids else [])
    second = plan_assignments(ids, after, seed=seed, previous=previous, answered=answered)
    placed = dict(zip(second["id"], second["annotator"]))
    assert sorted(placed) == sorted(ids)
    for record_id in answered:
        assert placed[record_id] == previous[record_id], "an answered record never moves, even if its annotator left"
    for record_id, annotator in placed.items():
        if record_id not in answered:
            assert annotator in after, "untouched records only go to current annotators"
    size = {annotator: sum(1 for holder in placed.values() if holder == annotator) for annotator in after}
    gave = {a for a in set(before) & set(after) if any(previous[r] == a != placed[r] for r in ids if r not in answered)}
    received = {a for a in after if any(placed[r] == a != previous[r] for r in ids)}
    # Few moves: nobody gives up an untouched record and is handed another in its place, and records
    # leave a staying annotator only for annotators who end up with no more than they do.
    assert not gave & received, f"{sorted(gave & received)} gave up records and received others"
    for giver in gave:
        assert all(size[taker] <= size[giver] for taker in received), (giver, size, sorted(received))


def test_same_seed_same_plan_other_seed_other_plan():
    ids = [str(i) for i in range(100)]
    assert plan_assignments(ids, ["a", "b"], seed=1).equals(plan_assignments(ids, ["a", "b"], seed=1))
    assert not plan_assignments(ids, ["a", "b"], seed=1).equals(plan_assignments(ids, ["a", "b"], seed=2))


def test_a_newcomer_gets_a_fair_share_of_untouched_records():
    ids = [str(i) for i in range(90)]
    first = plan_assignments(ids, ["ana", "bruno"], seed=3)
    previous = dict(zip(first["id"], first["annotator"]))
    second = plan_assignments(ids, ["ana", "bruno", "chen"], seed=3, previous=previous)
    assert second["annotator"].value_counts().to_dict() == {"ana": 30, "bruno": 30, "chen": 30}
    moved = sum(previous[r] != a for r, a in zip(second["id"], second["annotator"]))
    assert moved == 30, "only the newcomer's share moves"


# -- properties of a sequence of team changes: no overlap, every record once, locked records fixed, balance --

names = ["ana", "bruno", "chen", "dora", "eli", "finn", "gus"]
ids_with_repeats = st.lists(st.integers(0, 400).map(str), min_size=0, max_size=200)


def answered_subset(data, ids):
    return set(data.draw(st.lists(st.sampled_from(sorted(set(ids))), unique=True))) if ids else set()


@given(ids=ids_with_repeats, team=team_strategy, seed=st.integers(0, 1000))
@settings(max_examples=150, deadline=None)
def test_no_overlap_even_when_the_source_repeats_an_id(ids, team, seed):
    plan = plan_assignments(ids, team, seed=seed)
    assert plan["id"].is_unique, "one annotator per record"
    assert set(plan["id"]) == set(ids)
    assert set(plan["annotator"]) <= set(team)
    assert not plan["locked"].any(), "nothing is locked without a previous plan"


@given(
    ids=ids_strategy,
    teams=st.lists(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True), min_size=2, max_size=5),
    seed=st.integers(0, 1000),
    data=st.data(),
)
@settings(max_examples=150, deadline=None)
def test_locked_records_never_move_through_any_sequence_of_team_changes(ids, teams, seed, data):
    """Annotators join and leave several times; answers arrive between plans; an answered record stays put."""
    plan = plan_assignments(ids, teams[0], seed=seed)
    owner_of_answer: dict[str, str] = {}
    for team in teams[1:]:
        placed = dict(zip(plan["id"], plan["annotator"]))
        for record_id in answered_subset(data, ids):
            owner_of_answer.setdefault(record_id, placed[record_id])
        plan = plan_assignments(ids, team, seed=seed, previous=placed, answered=set(owner_of_answer))
        now = dict(zip(plan["id"], plan["annotator"]))
        assert plan["id"].is_unique and sorted(now) == sorted(ids), "every record exactly once"
        for record_id, annotator in owner_of_answer.items():
            assert now[record_id] == annotator, "an answered record never moves, even after its annotator left"
        assert set(plan.loc[plan["locked"], "id"]) == set(owner_of_answer)
        assert all(annotator in team for record_id, annotator in now.items() if record_id not in owner_of_answer)


@given(
    ids=ids_strategy,
    before=team_strategy,
    after=team_strategy,
    seed=st.integers(0, 1000),
    answered_at=st.sets(st.integers(0, 299)),
)
# The imbalance this property found (fixed): five of six records answered (ana 2, bruno 1, chen 2) when dora joins;
# the capacities, dealt evenly in name order (2, 2, 1, 1), ignored that answers already held chen at 2, so bruno
# kept his untouched record while dora got none.
@example(ids=[str(i) for i in range(6)], before=["ana", "bruno", "chen"], after=["ana", "bruno", "chen", "dora"], seed=0,
         answered_at={0, 1, 2, 3, 4})  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_balance_after_a_team_change_is_broken_only_by_answers(ids, before, after, seed, answered_at):
    """Sizes within one over the current team, except that an annotator may hold more if answers pin those records."""
    first = plan_assignments(ids, before, seed=seed)
    previous = dict(zip(first["id"], first["annotator"]))
    answered = {ids[index] for index in answered_at if index < len(ids)}
    plan = plan_assignments(ids, after, seed=seed, previous=previous, answered=answered)
    current = plan[plan["annotator"].isin(after)]
    sizes = current["annotator"].value_counts().reindex(sorted(set(after)), fill_value=0)
    unlocked = (
        current.loc[~current["locked"].astype(bool), "annotator"].value_counts().reindex(sizes.index, fill_value=0)
    )
    for annotator, size in sizes.items():
        if size > sizes.min() + 1:
            assert unlocked[annotator] == 0, f"{annotator} holds {size} (min {sizes.min()}) including movable records"
    if not answered:
        assert sizes.max() - sizes.min() <= 1


@given(ids=ids_strategy, team=team_strategy, seed=st.integers(0, 1000), data=st.data())
@settings(max_examples=150, deadline=None)
def test_replanning_with_nothing_changed_moves_nothing(ids, team, seed, data):
    first = plan_assignments(ids, team, seed=seed)
    previous = dict(zip(first["id"], first["annotator"]))
    again = plan_assignments(ids, team, seed=seed, previous=previous, answered=answered_subset(data, ids))
    assert dict(zip(again["id"], again["annotator"])) == previous


@given(ids=ids_strategy, dropped=st.data(), team=team_strategy, seed=st.integers(0, 1000))
@settings(max_examples=100, deadline=None)
def test_records_gone_from_the_source_leave_the_plan(ids, dropped, team, seed):
    first = plan_assignments(ids, team, seed=seed)
    previous = dict(zip(first["id"], first["annotator"]))
    remaining = dropped.draw(st.lists(st.sampled_from(ids), unique=True)) if ids else []
    plan = plan_assignments(remaining, team, seed=seed, previous=previous, answered=set(ids))
    assert sorted(plan["id"]) == sorted(remaining)
    assert all(previous[r] == a for r, a in zip(plan["id"], plan["annotator"])), "answered records keep their annotator"
