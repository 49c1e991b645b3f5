"""Translate between our record frames and Argilla's records and responses (pure functions)."""

from __future__ import annotations

import gc
import hashlib
import json
from contextlib import contextmanager

import argilla as rg
import pandas as pd

from .annotation_settings import QUALITY_FIELD, QUESTION_FOR_FIELD
from .logic.quality import NO_FLAG

TEXT_FIELDS = ("category", "instruction", "context", "response")
ORIGINAL_AGENT = "original-text"
RULE_AGENT = "quality-rules"
# How sure the rules are of a clean-up: high (markers, whitespace and encoding repair only remove
# damage), not 1.0, because a bracketed number can on rare occasions be content.
RULE_SCORE = 0.9
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


def quality_metadata(signal: dict | None) -> dict:
    """A record's quality signals as Argilla metadata (see annotation_settings.quality_metadata_properties)."""
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


def quality_notes(signal: dict | None) -> str:
    """Markdown shown with the record: each flag's reason, and whether the suggestion is a rule's clean-up."""
    if signal is None or not len(signal["reasons"]):
        return "_no automatic flag_"
    lines = [f"- **{reason.split(': ', 1)[0]}**: {reason.split(': ', 1)[1]}" for reason in signal["reasons"]]
    if signal["fixable"]:
        lines.append(f"\nThe suggested answers are the original with the safe rule fixes applied (agent `{RULE_AGENT}`): check and submit.")
    return "\n".join(lines)


def suggested_answers(row: dict, signal: dict | None) -> list[tuple[str, str, str, float]]:
    """Per question (question, value, agent, score): the rule-cleaned text where a rule changed it, else the original.

    Either way the annotator starts from a full answer: submitting it unchanged keeps the original,
    or confirms the rule's fix.
    """
    answers = []
    for field, question in QUESTION_FOR_FIELD.items():
        original = row[field] or ""
        cleaned = signal[f"clean_{field}"] if signal is not None else original
        if cleaned != original and cleaned:
            answers.append((question, cleaned, RULE_AGENT, RULE_SCORE))
        elif original:  # an empty suggestion is rejected by the server; "" is the default anyway
            answers.append((question, original, ORIGINAL_AGENT, 1.0))
    return answers


def suggestions_for(row: dict, signal: dict | None) -> list[rg.Suggestion]:
    return [rg.Suggestion(question, value, agent=agent, score=score) for question, value, agent, score in suggested_answers(row, signal)]


@contextmanager
def collector_paused():
    """No cyclic garbage collection inside the block (reference counting still frees what dies).

    For code that builds many objects that all stay alive, such as a push's records: the collector
    would find nothing to free, yet each full collection walks every object built so far again,
    which doubles the time `to_argilla_records` takes for 15,000 records.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def to_argilla_records(shard: pd.DataFrame, signals: pd.DataFrame | None = None, field_names: set[str] | None = None) -> list[rg.Record]:
    """One Argilla record per row, in the frame's order, with suggestions and the quality signals as metadata.

    `field_names` are the dataset's fields: a dataset created before the quality notes existed
    gets records without them (Argilla rejects values for fields a dataset does not have).
    """
    signal_by_id = {} if signals is None else {row["id"]: row for row in signals.to_dict("records")}
    with_notes = (QUALITY_FIELD,) if signals is not None else ()
    shown = [name for name in (*TEXT_FIELDS, *with_notes) if field_names is None or name in field_names]
    records = []
    with collector_paused():
        for row in shard.to_dict("records"):
            signal = signal_by_id.get(str(row["id"]))
            values = {**{name: row[name] for name in TEXT_FIELDS}, QUALITY_FIELD: quality_notes(signal)}
            records.append(
                rg.Record(
                    id=str(row["id"]),
                    fields={name: values[name] for name in shown},
                    suggestions=suggestions_for(row, signal),
                    metadata=quality_metadata(signal),
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
