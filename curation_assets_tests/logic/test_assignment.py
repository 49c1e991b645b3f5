"""Assignment: seeded, complete, disjoint, balanced, and stable when annotators join or leave."""

from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.logic.assignment import plan_assignments

ids_strategy = st.lists(st.integers(0, 10_000).map(str), min_size=0, max_size=300, unique=True)
team_strategy = st.lists(st.sampled_from(["ana", "bruno", "chen", "dora", "eli", "finn"]), min_size=1, max_size=6, unique=True)


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
    unanswered_staying = [r for r in ids if r not in answered and previous[r] in after and placed[r] == previous[r]]
    # Balanced target per annotator; those who keep records keep at least their fair share of them.
    fair = len([r for r in ids if placed[r] in after]) // len(after)
    for annotator in set(before) & set(after):
        kept = sum(1 for r in unanswered_staying if previous[r] == annotator)
        had = sum(1 for r in ids if r not in answered and previous[r] == annotator)
        assert kept >= min(had, fair - sum(1 for r in answered if previous[r] == annotator))


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
