"""Translate between our record frames and Argilla's records and responses (pure functions)."""

from __future__ import annotations

import hashlib
import json

import argilla as rg
import pandas as pd

from .annotation_settings import QUESTION_FOR_FIELD

TEXT_FIELDS = ("category", "instruction", "context", "response")
ORIGINAL_AGENT = "original-text"
FEEDBACK_COLUMNS = [
    "record_id", "shard", "annotator", "status",
    "new_instruction", "new_input", "new_response",
    "instruction", "context", "response", "category",
    "inserted_at", "updated_at",
]  # fmt: skip


def record_fingerprint(row: dict) -> str:
    """A digest of what an annotator sees of a record: equal digests mean nothing to re-push."""
    payload = json.dumps([row[name] for name in TEXT_FIELDS], ensure_ascii=False)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=12).hexdigest()


def to_argilla_records(shard: pd.DataFrame) -> list[rg.Record]:
    """One Argilla record per row; the originals are pre-filled as suggestions, so an unchanged submit is "no change"."""
    records = []
    for row in shard.to_dict("records"):
        suggestions = [
            rg.Suggestion(question, row[field], agent=ORIGINAL_AGENT, score=1.0)
            for field, question in QUESTION_FOR_FIELD.items()
            if row[field]  # an empty suggestion is rejected by the server; "" is the default anyway
        ]
        records.append(
            rg.Record(
                id=str(row["id"]),
                fields={name: row[name] for name in TEXT_FIELDS},
                suggestions=suggestions,
            )
        )
    return records


def feedback_rows(raw_records: list[dict], shard: str, usernames_by_id: dict[str, str]) -> list[dict]:
    """One row per record and responding user, plus a "pending" row for records nobody answered.

    `shard` is the annotator whose dataset holds the records; `annotator` is who responded.

    Works on the server's raw record models, because the client hides discarded responses
    that carry no values.
    """
    rows = []
    for record in raw_records:
        fields = record["fields"]
        originals = {
            "record_id": record["external_id"],
            "shard": shard,
            "instruction": fields.get("instruction", ""),
            "context": fields.get("context") or "",
            "response": fields.get("response", ""),
            "category": fields.get("category", ""),
        }
        responses = record.get("responses") or []
        if not responses:
            rows.append({**originals, "annotator": shard, "status": "pending", "inserted_at": None, "updated_at": None})
            continue
        for response in responses:
            values = response.get("values") or {}
            rows.append(
                {
                    **originals,
                    "annotator": usernames_by_id.get(response["user_id"], response["user_id"]),
                    "status": response["status"],
                    "new_instruction": _answer(values, "new-instruction"),
                    "new_input": _answer(values, "new-input"),
                    "new_response": _answer(values, "new-response"),
                    "inserted_at": response["inserted_at"],
                    "updated_at": response["updated_at"],
                }
            )
    return rows


def _answer(values: dict, question: str) -> str | None:
    answer = values.get(question)
    return None if answer is None else answer.get("value")


def feedback_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=FEEDBACK_COLUMNS)
    for column in ("inserted_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame
