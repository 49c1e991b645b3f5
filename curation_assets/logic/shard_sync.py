"""What an annotator's dataset needs so it matches the plan: push what is new or changed, withdraw what left,
never touch a record someone answered."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from .ids import ids_in
from .inert_display import ESCAPED_HTML, exact_fields, metadata_without_marker, shows_display_copies
from .quality import NO_FLAG
from .vocabulary import TEXT_FIELDS


def record_fingerprint(row: dict) -> str:
    """A digest of what an annotator sees of a record: equal digests mean nothing to re-push."""
    payload = json.dumps([row[name] for name in TEXT_FIELDS], ensure_ascii=False)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=12).hexdigest()


# Every signal column quality_metadata reads: what the shard fingerprint hashes.
QUALITY_SIGNAL_COLUMNS = (
    "flags", "priority", "duplicate_group_size", "citation_markers", "instruction_words", "context_words",
    "response_words", "duplicate_group",
)  # fmt: skip


def quality_metadata(signal: dict | None) -> dict:
    """A record's quality signals as the metadata values Argilla stores (argilla_adapter.dataset_settings declares them)."""
    if signal is None:
        return {}
    metadata = {
        "flags": list(signal["flags"]) or [NO_FLAG],
        "priority": int(signal["priority"]),
        "duplicate_group_size": int(signal["duplicate_group_size"]),
        "citation_markers": int(signal["citation_markers"]),
        "instruction_words": int(signal["instruction_words"]),
        "context_words": int(signal["context_words"]),
        "response_words": int(signal["response_words"]),
    }
    if signal["duplicate_group"]:
        metadata["duplicate_group"] = signal["duplicate_group"]
    return metadata


def plan_shard_sync(planned: pd.DataFrame, existing: list[dict], signals: pd.DataFrame | None = None) -> dict:
    """What to push and what to remove so the dataset matches the plan, never touching answered records.

    `existing` holds the dataset's raw records (with responses). Records with any response stay
    exactly as they are, even if the plan moved them or their source text changed; only their display
    is brought up to date (`display_upgrades`: answered records whose fields do not hold display copies
    yet). A record whose quality signals changed is pushed again, so its metadata and suggestions stay
    current; so is an unanswered one pushed before display copies existed.
    """
    if not existing:
        # A new dataset (every first push): everything planned is pushed. Row by row below, that cost as much as
        # the push's own encoding of the same records.
        return {
            "push": planned.reset_index(drop=True),
            "remove_record_uuids": [],
            "held_answered_ids": [],
            "answered_outside_plan": [],
            "display_upgrades": [],
            "unchanged": 0,
        }
    metadata_by_id = {} if signals is None else {row["id"]: quality_metadata(row) for row in signals.to_dict("records")}
    existing_by_id = {record["external_id"]: record for record in existing}
    answered = {record_id for record_id, record in existing_by_id.items() if record.get("responses")}
    planned_ids = set(planned["id"])

    def same_content(row: dict) -> bool:
        record = existing_by_id.get(row["id"])
        if record is None:
            return False
        stored = exact_fields(record)
        current = {name: stored.get(name) or "" for name in TEXT_FIELDS}
        same_metadata = signals is None or metadata_without_marker(record) == metadata_by_id.get(str(row["id"]), {})
        return record_fingerprint(current) == record_fingerprint(row) and same_metadata

    def up_to_date(row: dict) -> bool:
        return same_content(row) and shows_display_copies(existing_by_id[row["id"]])

    rows = planned.to_dict("records")
    to_push = [row for row in rows if row["id"] not in answered and not up_to_date(row)]
    held = [row["id"] for row in rows if row["id"] in answered and not same_content(row)]
    to_remove = [
        record["id"]
        for record_id, record in existing_by_id.items()
        if record_id not in planned_ids and record_id not in answered
    ]
    kept_elsewhere = sorted(record_id for record_id in answered if record_id not in planned_ids)
    return {
        "push": pd.DataFrame(to_push, columns=planned.columns),
        "remove_record_uuids": to_remove,
        "held_answered_ids": held,
        "answered_outside_plan": kept_elsewhere,
        "display_upgrades": [
            existing_by_id[record_id]
            for record_id in sorted(answered)
            if not shows_display_copies(existing_by_id[record_id])
        ],
        "unchanged": len(rows) - len(to_push) - len(held),
    }


def shard_fingerprint(planned: pd.DataFrame, dataset_id: str, signals: pd.DataFrame) -> str:
    """A digest of the dataset and every planned record's id, text and quality signals: equal digests mean the same push.

    Column-wise (one 64-bit hash per row, of the id, the texts and every signal column `quality_metadata`
    reads), not a JSON document per row: the no-change re-push computes it for every shard, and per row it
    cost about 0.1 s per 3,750 records. A digest made under another formula only differs, and a differing
    digest costs one read and compare of the dataset, never a wrong skip.
    """
    signal_columns = signals.loc[ids_in(signals["id"], planned["id"]), ["id", *QUALITY_SIGNAL_COLUMNS]].copy()
    signal_columns["flags"] = signal_columns["flags"].map(lambda flags: "|".join(flags))
    rows = (
        planned[["id", *TEXT_FIELDS]]
        .astype({"id": str})
        .merge(signal_columns.astype({"id": str}), on="id", how="left")
        .sort_values("id", kind="stable")
    )
    # The display rule is part of the push: a dataset pushed under another one is read and brought up to date.
    digest = hashlib.blake2b(f"{dataset_id}:{ESCAPED_HTML}:columns".encode(), digest_size=16)
    digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def spread_through_queue(ordered: pd.DataFrame, spread_ids: set[str], priority: dict[str, int]) -> pd.DataFrame:
    """The records in the same order of priority, with `spread_ids` (the overlap share) placed at even intervals among
    the others of their priority, so an annotator meets them all along the queue, not bunched at its start or end."""
    if ordered.empty or not spread_ids:
        return ordered
    keys = []
    for _, group in ordered.groupby(ordered["id"].map(lambda record_id: -priority.get(record_id, 0)), sort=True):
        spread = group["id"].isin(spread_ids)
        position = pd.Series(0.0, index=group.index)
        for members in (spread, ~spread):
            count = int(members.sum())
            position[members] = [(rank + 0.5) / count for rank in range(count)]
        keys.append(position)
    order = pd.concat(keys)
    priorities = ordered["id"].map(lambda record_id: -priority.get(record_id, 0))
    return (
        ordered.assign(_priority=priorities, _position=order)
        .sort_values(["_priority", "_position"], kind="stable")
        .drop(columns=["_priority", "_position"])
    )
