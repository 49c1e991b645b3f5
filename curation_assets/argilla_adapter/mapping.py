"""Translate between our record frames and Argilla's records and responses (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import argilla as rg
import pandas as pd

from ..logic.collector import collector_paused
from ..logic.inert_display import DISPLAY_MARKER, display_copy, exact_fields, shows_display_copies
from ..logic.review import ACCEPT, DISCARD
from ..logic.shard_sync import quality_metadata
from ..logic.vocabulary import (
    ANSWER_COLUMN_FOR_QUESTION,
    FEEDBACK_COLUMNS,
    QUESTION_FOR_FIELD,
    TEXT_FIELDS,
    ResponseStatus,
)
from .dataset_settings import QUALITY_FIELD, REVIEW_VERDICT

ORIGINAL_AGENT = "original-text"
RULE_AGENT = "quality-rules"
CLOSEST_AGENT = "closest-version"  # a review's pre-filled answer: the version most similar to the others
# How sure the rules are of a clean-up: high (markers, whitespace and encoding repair only remove
# damage), not 1.0, because a bracketed number can on rare occasions be content.
RULE_SCORE = 0.9
# Records turned into rows and then into a frame at a time when reading a dataset whole: the row dicts (and, with a
# lazy reader, the records) of one slice are held at once, not those of every record of the dataset.
FEEDBACK_SLICE = 20_000
# The record fields a feedback row copies (the quality notes, shown to annotators only, are not read back).
FEEDBACK_FIELDS = ("instruction", "context", "response", "category")


def quality_notes(signal: dict | None) -> str:
    """Text shown with the record (plain text, like every field): each flag's reason, and whether the suggestion is a
    rule's clean-up."""
    if signal is None or not len(signal["reasons"]):
        return "no automatic flag"
    lines = [f"• {reason}" for reason in signal["reasons"]]
    if signal["fixable"]:
        lines.append(
            f"\nThe suggested answers are the original with the safe rule fixes applied (agent {RULE_AGENT}): check and submit."
        )
    return "\n".join(lines)


def displayed(texts: dict) -> dict:
    """Field values as the dataset holds them: display copies, which Argilla's UI shows as text (logic/inert_display)."""
    return {name: display_copy(value) for name, value in texts.items()}


def record_metadata(signal: dict | None) -> dict:
    """A pushed record's metadata: its quality signals, and the marker saying its fields are display copies."""
    return {**quality_metadata(signal), **DISPLAY_MARKER}


def suggested_answers(row: dict, signal: dict | None) -> list[tuple[str, str, str, float]]:
    """Per question (question, value, agent, score): the rule-cleaned text where a rule changed it, else the original.

    Either way the annotator starts from a full answer: submitting it unchanged keeps the original,
    or confirms the rule's fix.
    """
    answers = []
    for field, question in QUESTION_FOR_FIELD.items():
        original = row[field] or ""
        # The signals hold a cleaned text only where a rule changed it (null otherwise).
        cleaned = signal[f"clean_{field}"] if signal is not None else None
        if isinstance(cleaned, str) and cleaned and cleaned != original:
            answers.append((question, cleaned, RULE_AGENT, RULE_SCORE))
        elif original:  # an empty suggestion is rejected by the server; "" is the default anyway
            answers.append((question, original, ORIGINAL_AGENT, 1.0))
    return answers


def suggestions_for(row: dict, signal: dict | None) -> list[rg.Suggestion]:
    return [
        rg.Suggestion(question, value, agent=agent, score=score)
        for question, value, agent, score in suggested_answers(row, signal)
    ]


def _record_contents(
    shard: pd.DataFrame, signals: pd.DataFrame | None, field_names: set[str] | None
) -> Iterator[tuple[str, dict, dict, dict, dict | None]]:
    """Per row, in the frame's order: its id, displayed fields, metadata, the row itself and its signals.

    `field_names` are the dataset's fields: a dataset created before the quality notes existed
    gets records without them (Argilla rejects values for fields a dataset does not have).
    """
    signal_by_id = {} if signals is None else {row["id"]: row for row in signals.to_dict("records")}
    with_notes = (QUALITY_FIELD,) if signals is not None else ()
    shown = [name for name in (*TEXT_FIELDS, *with_notes) if field_names is None or name in field_names]
    for row in shard.to_dict("records"):
        external_id = str(row["id"])
        signal = signal_by_id.get(external_id)
        values = {**{name: row[name] for name in TEXT_FIELDS}, QUALITY_FIELD: quality_notes(signal)}
        yield external_id, displayed({name: values[name] for name in shown}), record_metadata(signal), row, signal


def to_argilla_records(
    shard: pd.DataFrame, signals: pd.DataFrame | None = None, field_names: set[str] | None = None
) -> list[rg.Record]:
    """One Argilla record per row, in the frame's order, with suggestions and the quality signals as metadata."""
    with collector_paused():
        return [
            rg.Record(id=external_id, fields=fields, suggestions=suggestions_for(row, signal), metadata=metadata)
            for external_id, fields, metadata, row, signal in _record_contents(shard, signals, field_names)
        ]


def display_upgrades(raw_records: list[dict]) -> list[rg.Record]:
    """The records pushed before fields held display copies, rewritten in place with display copies of their own
    stored text, and marked.

    Only fields and metadata are sent: the records' suggestions and answers stay as they are (Argilla upserts the
    suggestions a record is sent with and keeps the others), and so does the text the pipeline reads back.
    """
    return [
        rg.Record(
            id=record["external_id"],
            fields=displayed({name: value for name, value in record["fields"].items() if value is not None}),
            metadata={**(record.get("metadata") or {}), **DISPLAY_MARKER},
        )
        for record in raw_records
        if not shows_display_copies(record)
    ]


def record_items(
    shard: pd.DataFrame,
    signals: pd.DataFrame | None,
    field_names: set[str] | None,
    question_ids: dict[str, str],
) -> Iterator[dict]:
    """What `to_argilla_records` builds, as the JSON items of Argilla's bulk upsert, one per row in the frame's order.

    The same fields, suggestions (question, value, agent, score) and metadata, without an
    `rg.Record` on the way: the push sends these (`ArgillaClient.upsert_record_items`), and
    curation_assets_tests/pipeline/test_direct_push.py checks that Argilla stores the same as
    for `records.log(to_argilla_records(...))`. `question_ids`: question name → id in the dataset.
    """
    for external_id, fields, metadata, row, signal in _record_contents(shard, signals, field_names):
        yield {
            "external_id": external_id,
            "fields": fields,
            "metadata": metadata,
            "suggestions": [
                {"question_id": question_ids[question], "value": value, "agent": agent, "score": score}
                for question, value, agent, score in suggested_answers(row, signal)
            ],
        }


def feedback_rows(raw_records: Iterable[dict], shard: str, usernames_by_id: dict[str, str]) -> list[dict]:
    """One row per record and responding user, plus a "pending" row for records nobody answered.

    `shard` is the annotator whose dataset holds the records; `annotator` is who responded.

    Works on the server's raw record models, because the client hides discarded responses
    that carry no values.
    """
    rows = []
    for record in raw_records:
        fields = exact_fields(record, FEEDBACK_FIELDS)
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
            rows.append(
                {
                    **originals,
                    "annotator": shard,
                    "status": ResponseStatus.PENDING.value,
                    "inserted_at": None,
                    "updated_at": None,
                }
            )
            continue
        for response in responses:
            values = response.get("values") or {}
            rows.append(
                {
                    **originals,
                    "annotator": usernames_by_id.get(response["user_id"], response["user_id"]),
                    "status": response["status"],
                    **{column: _answer(values, question) for question, column in ANSWER_COLUMN_FOR_QUESTION.items()},
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


def read_feedback_frame(
    raw_records: Iterable[dict], shard: str, usernames_by_id: dict[str, str], records_per_slice: int = FEEDBACK_SLICE
) -> tuple[pd.DataFrame, int]:
    """`feedback_frame(feedback_rows(raw_records, ...))` and how many records it read, made a slice of records at a
    time, so that a dataset read page by page is never held whole as records and row dicts (at 1,000,000 records
    those were most of `collected_feedback`'s peak)."""
    records = iter(raw_records)
    frames, records_read = [], 0
    while chunk := list(islice(records, records_per_slice)):
        records_read += len(chunk)
        frames.append(feedback_frame(feedback_rows(chunk, shard, usernames_by_id)))
        del chunk  # before the next slice is read, not after: one slice of records alive at a time
    if len(frames) <= 1:
        return (frames[0] if frames else feedback_frame([])), records_read
    # A slice in which nobody answered a question has that column as None objects, which concat keeps for the whole
    # column; pandas infers text for it when every row is made at once: inferred again, so the two agree.
    return pd.concat(frames, ignore_index=True).infer_objects(), records_read


REVIEW_COLUMNS = [
    "record_id",
    "reviewer",
    "status",
    "verdict",
    "new_instruction",
    "new_input",
    "new_response",
    "updated_at",
]


def to_review_records(queue: pd.DataFrame, originals: pd.DataFrame) -> list[rg.Record]:
    """One review record per disagreement: the original, every version, why it is here; the closest version pre-filled.

    The fields are display copies of plain text, like an annotator's (logic/inert_display): the versions are
    annotators' answers, as untrusted as the source.
    """
    original_by_id = originals.drop_duplicates("record_id").set_index("record_id")
    records = []
    for row in queue.to_dict("records"):
        original = original_by_id.loc[row["record_id"]]
        prefill = row["prefill"] or {}
        suggestions = [rg.Suggestion(REVIEW_VERDICT, ACCEPT if prefill else DISCARD, agent=CLOSEST_AGENT)]
        suggestions += [
            rg.Suggestion(question, prefill[column], agent=CLOSEST_AGENT)
            for question, column in ANSWER_COLUMN_FOR_QUESTION.items()
            if prefill.get(column)
        ]
        original_texts = {
            "instruction": original["instruction"],
            "input": original["context"],
            "response": original["response"],
        }
        shown = {
            "category": original["category"],
            "original": _texts_block(original_texts),
            "versions": "\n\n".join(_version_block(version, row["closest"]) for version in row["versions"]),
            "reason": row["reason"],
        }
        records.append(
            rg.Record(
                id=str(row["record_id"]),
                fields=displayed(shown),
                suggestions=suggestions,
                metadata=dict(DISPLAY_MARKER),
            )
        )
    return records


def _texts_block(texts: dict) -> str:
    return "\n\n".join(f"{name.capitalize()}:\n{text or '(empty)'}" for name, text in texts.items())


def _version_block(version: dict, closest: str) -> str:
    heading = f"── {version['annotator']}: {version['status']}"
    if version["annotator"] == closest:
        heading += " (closest to the others, pre-filled)"
    heading += " ──"
    if version["status"] != ResponseStatus.SUBMITTED:
        return heading
    return f"{heading}\n{_texts_block(version['texts'])}"


def review_rows(raw_records: list[dict], reviewer_dataset: str, usernames_by_id: dict[str, str]) -> list[dict]:
    """One row per reviewed record and reviewer's response, read from the review dataset's raw records."""
    rows = []
    for record in raw_records:
        for response in record.get("responses") or []:
            values = response.get("values") or {}
            rows.append(
                {
                    "record_id": record["external_id"],
                    "reviewer": usernames_by_id.get(response["user_id"], reviewer_dataset),
                    "status": response["status"],
                    "verdict": _answer(values, REVIEW_VERDICT),
                    **{column: _answer(values, question) for question, column in ANSWER_COLUMN_FOR_QUESTION.items()},
                    "updated_at": response["updated_at"],
                }
            )
    return rows


def review_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=REVIEW_COLUMNS)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True, format="ISO8601")
    return frame
