"""Answers of annotators whose Argilla account was deleted.

Argilla deletes a user's responses together with the account (a cascading foreign key), so
an owner removing a departed annotator would silently erase their finished work. The pipeline
keeps the last copy it collected of every submitted or discarded answer, and puts those of
users who no longer exist back into the feedback; their records stay where they were.
"""

from __future__ import annotations

import pandas as pd

from .ids import ids_in
from .vocabulary import FINISHED_STATUSES, ResponseStatus


def finished_answers(feedback: pd.DataFrame) -> pd.DataFrame:
    """The rows worth keeping should Argilla lose them: submitted and discarded answers (drafts are not work done)."""
    return feedback[feedback["status"].isin([str(status) for status in FINISHED_STATUSES])].reset_index(drop=True)


def departed_answers(kept: pd.DataFrame, current_users: set[str]) -> pd.DataFrame:
    """Kept answers whose annotator is no longer a user of the server."""
    return kept[~kept["annotator"].isin(current_users)].reset_index(drop=True)


def with_departed_answers(live: pd.DataFrame, kept: pd.DataFrame, current_users: set[str]) -> tuple[pd.DataFrame, int]:
    """Live feedback plus the departed annotators' answers Argilla no longer has, and how many were put back.

    A record answered by a departed annotator now looks untouched in Argilla: its "pending"
    placeholder row is replaced by the kept answer.
    """
    departed = departed_answers(kept, current_users)
    if departed.empty:  # nobody left: nothing to look up, and no copy of the live answers to look it up in
        return live, 0
    answered_live = live[live["status"] != ResponseStatus.PENDING]
    live_keys = set(zip(answered_live["record_id"], answered_live["annotator"]))
    missing = departed[[key not in live_keys for key in zip(departed["record_id"], departed["annotator"])]]
    if missing.empty:
        return live, 0
    placeholders = (live["status"] == ResponseStatus.PENDING) & ids_in(live["record_id"], set(missing["record_id"]))
    merged = pd.concat([live[~placeholders], missing.reindex(columns=live.columns)], ignore_index=True)
    return merged.sort_values(["shard", "record_id"], kind="stable").reset_index(drop=True), len(missing)


def records_held_by_departed(kept: pd.DataFrame, current_users: set[str]) -> set[tuple[str, str]]:
    """(record id, the departed annotator's dataset holding it): such records count as answered and never move."""
    departed = departed_answers(kept, current_users)
    return set(zip(departed["record_id"], departed["shard"]))
