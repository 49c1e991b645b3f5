"""The words the whole pipeline shares, defined once: response statuses, the record's text fields and the questions."""

from __future__ import annotations

from enum import StrEnum


class ResponseStatus(StrEnum):
    """What an annotator did with a record, as Argilla names it; PENDING: nobody has answered it."""

    SUBMITTED = "submitted"
    DISCARDED = "discarded"
    DRAFT = "draft"
    PENDING = "pending"


# An answer that counts as work done: kept should Argilla lose it, counted by the sensor.
FINISHED_STATUSES = (ResponseStatus.SUBMITTED, ResponseStatus.DISCARDED)
# Statuses a response can have (a pending record has none).
ANSWER_STATUSES = (ResponseStatus.SUBMITTED, ResponseStatus.DISCARDED, ResponseStatus.DRAFT)
# In the order charts and tables show them.
STATUSES = (*ANSWER_STATUSES, ResponseStatus.PENDING)

# What an annotator sees of a record, in display order.
TEXT_FIELDS = ("category", "instruction", "context", "response")

# Each question rewrites one field: field → question name in Argilla → answer column in the feedback frame.
QUESTION_FOR_FIELD = {
    "instruction": "new-instruction",
    "context": "new-input",
    "response": "new-response",
}
ANSWER_COLUMN_FOR_QUESTION = {
    "new-instruction": "new_instruction",
    "new-input": "new_input",
    "new-response": "new_response",
}

# One row per record and responding annotator (a "pending" row for a record nobody answered).
FEEDBACK_COLUMNS = [
    "record_id", "shard", "annotator", "status",
    "new_instruction", "new_input", "new_response",
    "instruction", "context", "response", "category",
    "inserted_at", "updated_at",
]  # fmt: skip
