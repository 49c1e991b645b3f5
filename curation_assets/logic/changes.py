"""What an annotator changed: normalised comparison of each answer with the original text."""

from __future__ import annotations

import difflib
import os
import re

import pandas as pd

# (original field, answer column in the feedback frame, short name used in labels)
COMPARED = (
    ("instruction", "new_instruction", "instruction"),
    ("context", "new_input", "input"),
    ("response", "new_response", "response"),
)
_WHITESPACE = re.compile(r"\s+")


def normalise(text) -> str:
    """Collapse whitespace runs and strip; a missing value (None/NaN) is "" (an absent optional input)."""
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return ""
    return _WHITESPACE.sub(" ", str(text)).strip()


def changed_fields(original: dict, answers: dict) -> list[str]:
    """Short names of the fields whose normalised answer differs from the normalised original."""
    return [name for field, column, name in COMPARED if normalise(original.get(field)) != normalise(answers.get(column))]


def change_label(fields: list[str]) -> str:
    """"instruction+response"-style label; "none" for an unchanged submit."""
    return "+".join(fields) if fields else "none"


def similarity(before, after) -> float:
    """1.0 for identical normalised texts, down to 0.0 for nothing in common (difflib ratio)."""
    left, right = normalise(before), normalise(after)
    if left == right:
        return 1.0
    # Most edits touch a small part of a long text. difflib is quadratic without autojunk, so let it
    # compare only the differing middle: the shared prefix and suffix are matches by definition.
    prefix = len(os.path.commonprefix([left, right]))
    left_rest, right_rest = left[prefix:], right[prefix:]
    suffix = len(os.path.commonprefix([left_rest[::-1], right_rest[::-1]]))
    middle = difflib.SequenceMatcher(None, left_rest[: len(left_rest) - suffix], right_rest[: len(right_rest) - suffix], autojunk=False)
    matched = prefix + suffix + sum(block.size for block in middle.get_matching_blocks())
    return 2.0 * matched / (len(left) + len(right))


def annotate_changes(submitted: pd.DataFrame) -> pd.DataFrame:
    """Per submitted row: `changed_fields` label, a boolean per field, and a similarity per field."""
    result = submitted.copy()
    for field, column, name in COMPARED:
        before = result[field].map(normalise)
        after = result[column].map(normalise)
        result[f"{name}_changed"] = before != after
        result[f"{name}_similarity"] = [
            1.0 if unchanged else similarity(b, a) for b, a, unchanged in zip(before, after, before == after)
        ]
    flags = result[[f"{name}_changed" for *_, name in COMPARED]].to_numpy()
    names = [name for *_, name in COMPARED]
    result["changed_fields"] = [change_label([n for n, flag in zip(names, row) if flag]) for row in flags]
    return result
