"""Deal records to annotators: seeded, no overlap, balanced, and stable when the team changes."""

from __future__ import annotations

import hashlib
from collections import Counter

import pandas as pd


def _seeded_order(record_ids: list[str], seed: int) -> list[str]:
    """A shuffle that depends only on the seed and the ids, not on their input order."""
    return sorted(record_ids, key=lambda record_id: hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest())


def _balanced_capacities(
    team: list[str], locked_counts: dict[str, int], held_counts: Counter, total: int
) -> dict[str, int]:
    """How many records each annotator should hold: as even as possible, given that answered records cannot move.

    Whoever already holds at least an even share in answered records keeps exactly those; the rest
    share what is left evenly (water-filling), the odd records going to those who hold more than
    that now, so that a re-plan with nothing changed moves nothing.
    """
    capacity, pool, remaining = {}, sorted(team), total
    while pool:
        even_share = -(-remaining // len(pool))
        over = [annotator for annotator in pool if locked_counts[annotator] >= even_share]
        if not over:
            break
        for annotator in over:
            capacity[annotator] = locked_counts[annotator]
            remaining -= locked_counts[annotator]
        pool = [annotator for annotator in pool if annotator not in over]
    if pool:
        base, extra = divmod(remaining, len(pool))
        # Only those who already hold more than the base share have an odd record to lose; otherwise
        # the fresh deal's order stands, so a re-plan after a half-done push matches a clean one.
        over_base = {annotator: max(held_counts[annotator] - base, 0) for annotator in pool}
        by_holdings = sorted(pool, key=lambda annotator: (-over_base[annotator], annotator))
        capacity.update({annotator: base + (1 if index < extra else 0) for index, annotator in enumerate(by_holdings)})
    return capacity


def plan_assignments(
    record_ids: list[str],
    annotators: list[str],
    seed: int = 42,
    previous: dict[str, str] | None = None,
    answered: set[str] | frozenset[str] = frozenset(),
) -> pd.DataFrame:
    """One row per record: `id`, `annotator`, `locked` (kept where it was because someone answered it).

    Without a previous plan: shuffle with the seed and deal round-robin, as the tutorial does.
    With one: answered records stay with whoever holds them (even an annotator who left, so no
    answer is ever lost); unanswered records stay put unless their annotator left or their share
    is over the balanced size, and the freed records go to the annotators with the fewest.
    """
    if not annotators:
        raise ValueError("no annotators to assign records to: create users with the annotator role first")
    previous = previous or {}
    team = sorted(set(annotators))
    ordered = _seeded_order(list(dict.fromkeys(record_ids)), seed)

    locked = {record_id: previous[record_id] for record_id in ordered if record_id in answered and record_id in previous}
    movable = [record_id for record_id in ordered if record_id not in locked]
    total = len(ordered)
    counts = {annotator: 0 for annotator in team}
    for holder in locked.values():
        if holder in counts:
            counts[holder] += 1
    held_by_team = total - sum(1 for holder in locked.values() if holder not in counts)
    held_now = Counter(previous.get(record_id) for record_id in ordered)
    capacity = _balanced_capacities(team, dict(counts), held_now, held_by_team)

    assignment = dict(locked)
    unplaced = []
    for record_id in movable:
        holder = previous.get(record_id)
        if holder in counts and counts[holder] < capacity[holder]:
            assignment[record_id] = holder
            counts[holder] += 1
        else:
            unplaced.append(record_id)
    # A record without a place goes first to its home in a fresh round-robin deal: so a plan made
    # after an interrupted push (some records placed, some not) is the plan a clean run makes.
    fresh_home = {record_id: team[index % len(team)] for index, record_id in enumerate(ordered)}
    homeless = []
    for record_id in unplaced:
        home = fresh_home[record_id]
        if counts[home] < capacity[home]:
            assignment[record_id] = home
            counts[home] += 1
        else:
            homeless.append(record_id)
    for record_id in homeless:
        least = min(team, key=lambda annotator: (counts[annotator] - capacity[annotator], counts[annotator], annotator))
        assignment[record_id] = least
        counts[least] += 1

    return pd.DataFrame(
        {
            "id": ordered,
            "annotator": [assignment[record_id] for record_id in ordered],
            "locked": [record_id in locked for record_id in ordered],
        }
    )
