"""Deal records to annotators: seeded, no overlap, balanced, and stable when the team changes."""

from __future__ import annotations

import hashlib
from collections import Counter

import pandas as pd


def _seeded_order(record_ids: list[str], seed: int) -> list[str]:
    """A shuffle that depends only on the seed and the ids, not on their input order."""
    return sorted(
        record_ids, key=lambda record_id: hashlib.blake2b(f"{seed}:{record_id}".encode(), digest_size=8).digest()
    )


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

    locked = {
        record_id: previous[record_id] for record_id in ordered if record_id in answered and record_id in previous
    }
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


def overlap_records(record_ids: list[str], share: float, seed: int) -> set[str]:
    """The records dealt to several annotators: exactly round(share × n) of them, chosen by a seeded hash.

    A record's rank depends only on the seed and its id, so the same records are chosen in any
    order; a grown source moves only the boundary.
    """
    count = round(share * len(record_ids))
    ranked = sorted(dict.fromkeys(record_ids), key=lambda record_id: _hash(f"{seed}:overlap:{record_id}"))
    return set(ranked[:count])


def plan_team_assignments(
    record_ids: list[str],
    annotators: list[str],
    seed: int = 42,
    placements: dict[str, set[str]] | None = None,
    answered_pairs: set[tuple[str, str]] | frozenset = frozenset(),
    overlap_share: float = 0.0,
    annotators_per_overlap_record: int = 2,
) -> pd.DataFrame:
    """One row per record and annotator who gets it: `id`, `annotator`, `locked`, `copy`, `overlap`.

    Records outside the overlap go to one annotator each by `plan_assignments` (the tutorial's deal,
    balanced and stable). The overlap share goes to k different annotators each, filling up those
    with the fewest records, so the team stays balanced. Answers never move: an answered
    (record, annotator) pair stays, even outside the overlap or the team; an unanswered one stays
    while its annotator is on the team and the record still needs that many annotators.

    `placements` is where each record sits now (record → annotators holding it), `answered_pairs`
    the (record, annotator) pairs with a response. A record one annotator holds has `copy` False.
    """
    placements = placements or {}
    team = sorted(set(annotators))
    k = max(1, min(annotators_per_overlap_record, len(team)))
    unique_ids = list(dict.fromkeys(record_ids))
    overlapping = overlap_records(unique_ids, overlap_share, seed) if overlap_share > 0 and k > 1 else set()
    single = [record_id for record_id in unique_ids if record_id not in overlapping]

    # The one holder a record had: an annotator who answered it if any (it must stay), else the first.
    previous, answered = {}, set()
    for record_id in single:
        holders = placements.get(record_id, set())
        answering = sorted(holder for holder in holders if (record_id, holder) in answered_pairs)
        if holders:
            previous[record_id] = (answering or sorted(holders))[0]
        if answering:
            answered.add(record_id)
    primary = plan_assignments(single, team, seed=seed, previous=previous, answered=answered) if single else None

    rows, load = [], Counter()
    if primary is not None:
        for record_id, holder, locked in zip(primary["id"], primary["annotator"], primary["locked"]):
            rows.append({"id": record_id, "annotator": holder, "locked": locked, "copy": False, "overlap": False})
            load[holder] += 1
            # Answered copies from when the record overlapped (or before a re-plan) stay with their answers.
            for other in sorted(placements.get(record_id, set()) - {holder}):
                if (record_id, other) in answered_pairs:
                    rows.append({"id": record_id, "annotator": other, "locked": True, "copy": True, "overlap": False})
                    load[other] += 1
    for record_id in _seeded_order([record_id for record_id in unique_ids if record_id in overlapping], seed):
        holders = sorted(placements.get(record_id, set()))
        chosen = [holder for holder in holders if (record_id, holder) in answered_pairs]
        chosen += [holder for holder in holders if holder not in chosen and holder in team][: max(0, k - len(chosen))]
        candidates = sorted(
            (annotator for annotator in team if annotator not in chosen),
            key=lambda annotator: (load[annotator], _hash(f"{seed}:{record_id}:{annotator}")),
        )
        chosen += candidates[: max(0, k - len(chosen))]
        for position, holder in enumerate(chosen):
            load[holder] += 1
            rows.append(
                {"id": record_id, "annotator": holder, "locked": (record_id, holder) in answered_pairs,
                 "copy": position > 0, "overlap": True}
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["id", "annotator", "locked", "copy", "overlap"])


def _hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()
