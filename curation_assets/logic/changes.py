"""What an annotator changed: normalised comparison of each answer with the original text."""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# (original field, answer column in the feedback frame, short name used in labels)
COMPARED = (
    ("instruction", "new_instruction", "instruction"),
    ("context", "new_input", "input"),
    ("response", "new_response", "response"),
)


def normalise(text) -> str:
    """Collapse whitespace runs and strip; a missing value (None/NaN) is "" (an absent optional input).

    str.split() splits at exactly the characters the regular expression \\s matches (str.isspace),
    four times faster than substituting them.
    """
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return ""
    return " ".join(str(text).split())


def changed_fields(original: dict, answers: dict) -> list[str]:
    """Short names of the fields whose normalised answer differs from the normalised original."""
    return [
        name for field, column, name in COMPARED if normalise(original.get(field)) != normalise(answers.get(column))
    ]


def change_label(fields: list[str]) -> str:
    """ "instruction+response"-style label; "none" for an unchanged submit."""
    return "+".join(fields) if fields else "none"


def similarity(before, after) -> float:
    """1.0 for identical normalised texts, down to 0.0 for nothing in common: difflib's ratio over words, weighted by
    length.

    Words, not characters: on characters difflib's matching is quadratic in practice (every letter
    occurs everywhere), and an edit spread over a long context (citation markers removed
    throughout) took seconds per record. The score is the share of characters (a word and the
    space after it) that sit in words both texts keep in order.
    """
    return _similarity_of_normalised(normalise(before), normalise(after))


def _similarity_of_normalised(left: str, right: str) -> float:
    """`similarity` of two texts `normalise` already gave."""
    if left == right:
        return 1.0
    left_words, right_words = left.split(" "), right.split(" ")
    # Shared leading and trailing words are matches by definition: difflib compares only the middle.
    shortest = min(len(left_words), len(right_words))
    prefix = 0
    while prefix < shortest and left_words[prefix] == right_words[prefix]:
        prefix += 1
    suffix = 0
    while suffix < shortest - prefix and left_words[-1 - suffix] == right_words[-1 - suffix]:
        suffix += 1
    left_middle = left_words[prefix : len(left_words) - suffix]
    middle = difflib.SequenceMatcher(None, left_middle, right_words[prefix : len(right_words) - suffix], autojunk=False)
    kept = left_words[:prefix] + left_words[len(left_words) - suffix :]
    kept += [word for block in middle.get_matching_blocks() for word in left_middle[block.a : block.a + block.size]]
    matched = sum(map(len, kept)) + len(kept)
    # Each text is its words plus one space after each: len(text) + 1 characters.
    return 2.0 * matched / (len(left) + len(right) + 2)


# Bump whenever a change to the comparison would annotate some answer differently: annotations an earlier version kept
# (`known_annotations`) are then not taken (test_changes_properties.py pins similarities to remind you).
COMPARISON_VERSION = 1
TEXT_DIGEST = "text_digest"
KNOWN_COLUMNS = ("field", TEXT_DIGEST, "similarity")


def annotate_changes(submitted: pd.DataFrame, known: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per submitted row: `changed_fields` label, a boolean per field, and a similarity per field.

    An answer identical to its original, the usual case, is found by Arrow's `==` on the whole
    column and neither normalised nor compared word by word; only the other rows become Python
    objects, compared row by row (rather than `Series.map` on Arrow strings).

    `known` is `known_annotations` of an earlier call: an edited answer whose original and answer
    hash as one there did takes that similarity instead of being compared again, word by word (a
    refresh after a few new answers compares only those). The result is the same with or without it,
    short of two different pairs of texts sharing a 64-bit digest (about one chance in 10^10 for
    100,000 edited answers against 100,000 known).
    """
    result = submitted.copy(deep=False)  # the new columns only: the texts stay shared with `submitted`
    changed_by_field = []
    for field, column, name in COMPARED:
        changed, similarities = np.zeros(len(result), dtype=bool), np.ones(len(result))
        differing = np.flatnonzero(~_identical_texts(result[field], result[column]))
        before_texts = result[field].iloc[differing].to_numpy(dtype=object)
        after_texts = result[column].iloc[differing].to_numpy(dtype=object)
        compare = np.ones(len(differing), dtype=bool)
        if known is not None and len(differing):
            of_field = known[known["field"] == name].drop_duplicates(TEXT_DIGEST)
            found = pd.Index(of_field[TEXT_DIGEST]).get_indexer(_pair_digests(before_texts, after_texts))
            taken = found >= 0
            # Only edited answers are kept, so a known pair is a change, with the similarity it had.
            changed[differing[taken]] = True
            similarities[differing[taken]] = of_field["similarity"].to_numpy()[found[taken]]
            compare = ~taken
        for row, before, after in zip(differing[compare], before_texts[compare], after_texts[compare]):
            before, after = normalise(before), normalise(after)
            changed[row] = before != after
            similarities[row] = _similarity_of_normalised(before, after)
        result[f"{name}_changed"] = changed
        result[f"{name}_similarity"] = similarities.tolist()  # a list as before: an empty frame keeps its dtypes
        changed_by_field.append(changed)
    names = [name for *_, name in COMPARED]
    result["changed_fields"] = [
        change_label([name for name, flag in zip(names, flags) if flag]) for flags in zip(*changed_by_field)
    ]
    return result


def known_annotations(annotated: pd.DataFrame) -> pd.DataFrame:
    """What `annotate_changes(..., known=)` takes: per field, each edited answer's digest (with its original) and
    similarity. Unedited answers are not kept: `annotate_changes` finds them without comparing words."""
    parts = []
    for field, column, name in COMPARED:
        # The edited rows' two texts only, not a copy of every column of those rows (at 1,000,000 records a copy of
        # the rows cost hundreds of MiB and seconds).
        edited = np.flatnonzero(annotated[f"{name}_changed"].to_numpy(dtype=bool))
        before_texts = annotated[field].iloc[edited].to_numpy(dtype=object)
        after_texts = annotated[column].iloc[edited].to_numpy(dtype=object)
        similarities = annotated[f"{name}_similarity"].to_numpy(dtype=float)[edited]
        parts.append(
            pd.DataFrame(
                {"field": name, TEXT_DIGEST: _pair_digests(before_texts, after_texts), "similarity": similarities}
            )
        )
    return pd.concat(parts, ignore_index=True)


def _pair_digests(before_texts: np.ndarray, after_texts: np.ndarray) -> np.ndarray:
    """One 64-bit hash per (original, answer) pair: all a field's similarity depends on."""
    pairs = pd.DataFrame({"before": before_texts, "after": after_texts}, dtype=object)
    return pd.util.hash_pandas_object(pairs, index=False).to_numpy()


def _identical_texts(before: pd.Series, after: pd.Series) -> np.ndarray:
    """Per row, whether `before` is a string and `after` the same string."""
    if isinstance(before.dtype, pd.StringDtype) and isinstance(after.dtype, pd.StringDtype):
        before_text = pa.array(before.array)
        equal = pc.equal(before_text, pa.array(after.array).cast(before_text.type))
        return pc.fill_null(equal, False).to_numpy(zero_copy_only=False)
    return np.fromiter(
        (isinstance(b, str) and b == a for b, a in zip(before.to_numpy(dtype=object), after.to_numpy(dtype=object))),
        dtype=bool,
        count=len(before),
    )
