"""Change detection, property-based: what counts as a change, on any text, missing values included."""

import math
import re

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.logic.changes import (
    COMPARED,
    COMPARISON_VERSION,
    annotate_changes,
    change_label,
    changed_fields,
    known_annotations,
    normalise,
    similarity,
)

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30)
# What a field or an answer can hold: text, or one of the ways "nothing" arrives (null, NaN, "").
values = st.one_of(texts, st.sampled_from([None, math.nan, "", " ", "\n"]))
COLUMNS = [field for field, *_ in COMPARED] + [column for _, column, _ in COMPARED]
rows = st.fixed_dictionaries(
    {
        "instruction": values, "context": values, "response": values,
        "new_instruction": values, "new_input": values, "new_response": values,
    }
)  # fmt: skip


@given(value=values)
def test_normalise_is_idempotent_and_missing_is_empty(value):
    once = normalise(value)
    assert normalise(once) == once
    assert once == once.strip() and "  " not in once
    if value is None or (isinstance(value, float) and math.isnan(value)):
        assert once == ""


WHITESPACE = [chr(code) for code in range(0x110000) if chr(code).isspace()]


@given(st.lists(st.sampled_from([*WHITESPACE, "a", "b", "\u200b", "é"]), max_size=20).map("".join))
def test_normalise_collapses_exactly_what_the_whitespace_class_matches(text):
    assert normalise(text) == re.sub(r"\s+", " ", text).strip()


@given(before=values, after=values)
def test_similarity_is_one_exactly_for_equal_normalised_texts(before, after):
    score = similarity(before, after)
    assert 0.0 <= score <= 1.0
    assert (score == 1.0) == (normalise(before) == normalise(after))


@given(frame_rows=st.lists(rows, min_size=0, max_size=20))
@settings(max_examples=150, deadline=None)
def test_frame_level_changes_agree_with_the_row_level_rule(frame_rows):
    annotated = annotate_changes(pd.DataFrame(frame_rows, columns=COLUMNS))
    assert len(annotated) == len(frame_rows)
    for row, result in zip(frame_rows, annotated.to_dict("records")):
        fields = changed_fields(row, row)
        assert result["changed_fields"] == change_label(fields)
        for field, column, name in COMPARED:
            changed = normalise(row[field]) != normalise(row[column])
            assert result[f"{name}_changed"] == changed == (name in fields)
            assert (result[f"{name}_similarity"] == 1.0) == (not changed)
            assert result[f"{name}_similarity"] == similarity(row[field], row[column])
    assert annotated.dtypes[[f"{name}_changed" for *_, name in COMPARED]].eq(bool).all()


# The order labels list changed fields in, as the charts and the README spell them: written out, not derived.
LABEL_ORDER = ("instruction", "input", "response")
ANSWER_COLUMN = {"instruction": "new_instruction", "input": "new_input", "response": "new_response"}
ORIGINAL_FIELD = {"instruction": "instruction", "input": "context", "response": "response"}


@given(edited=st.lists(st.sampled_from(LABEL_ORDER), unique=True), original=texts.filter(str.strip))
def test_change_labels_list_the_edited_fields_in_a_fixed_order_whatever_order_they_were_edited_in(edited, original):
    row = {
        **{ORIGINAL_FIELD[name]: original for name in LABEL_ORDER},
        **{ANSWER_COLUMN[name]: original for name in LABEL_ORDER},
    }
    for position, name in enumerate(edited):  # edited in the drawn order, each differently
        row[ANSWER_COLUMN[name]] = f"{original} edit {position}"
    expected = "+".join(name for name in LABEL_ORDER if name in edited) or "none"
    assert change_label(changed_fields(row, row)) == expected
    (frame_label,) = annotate_changes(pd.DataFrame([row], columns=COLUMNS))["changed_fields"]
    assert frame_label == expected


@given(frame_rows=st.lists(rows, min_size=0, max_size=20))
@settings(max_examples=100, deadline=None)
def test_annotations_are_the_same_on_arrow_text_and_on_python_objects(frame_rows):
    # annotate_changes finds identical answers with Arrow's `==` when the columns are Arrow text, row by row otherwise.
    frame = pd.DataFrame(frame_rows, columns=COLUMNS)
    on_objects, on_arrow = annotate_changes(frame.astype(object)), annotate_changes(frame.astype("str"))
    added = [column for column in on_objects.columns if column not in COLUMNS]
    pd.testing.assert_frame_equal(on_objects[added], on_arrow[added])


@given(
    earlier_rows=st.lists(rows, min_size=0, max_size=12),
    new_rows=st.lists(rows, min_size=0, max_size=12),
    kept=st.lists(st.booleans(), min_size=12, max_size=12),
    as_arrow=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_annotations_taken_from_an_earlier_run_are_the_ones_a_comparison_gives(earlier_rows, new_rows, kept, as_arrow):
    # A refresh: some rows of the earlier run again (their annotations known), new ones, in another order.
    earlier = pd.DataFrame(earlier_rows, columns=COLUMNS)
    known = known_annotations(annotate_changes(earlier))
    again = [row for row, keep in zip(earlier_rows, kept) if keep]
    frame = pd.DataFrame([*new_rows, *again][::-1], columns=COLUMNS)
    frame = frame.astype("str") if as_arrow else frame
    compared = annotate_changes(frame)
    pd.testing.assert_frame_equal(annotate_changes(frame, known), compared)

    # And they are taken, not compared again: a similarity no comparison gives, planted in every known answer, is what
    # each answer edited the same way before gets (whichever way the frame holds its text).
    def pair(row, field, column):
        return tuple(None if pd.isna(value) else str(value) for value in (row[field], row[column]))

    edited_before = {
        (name, pair(row, field, column))
        for row in annotate_changes(earlier).to_dict("records")
        for field, column, name in COMPARED
        if row[f"{name}_changed"]
    }
    planted = annotate_changes(frame, known.assign(similarity=-1.0))
    for row, fresh in zip(planted.to_dict("records"), compared.to_dict("records")):
        for field, column, name in COMPARED:
            taken = (name, pair(row, field, column)) in edited_before
            assert row[f"{name}_similarity"] == (-1.0 if taken else fresh[f"{name}_similarity"])


def test_a_known_answer_is_recognised_by_its_texts_not_its_position():
    row = {"instruction": "a", "context": "", "response": "b",
           "new_instruction": "a changed", "new_input": "", "new_response": "b"}  # fmt: skip
    known = known_annotations(annotate_changes(pd.DataFrame([row], columns=COLUMNS)))
    assert known["field"].tolist() == ["instruction"]  # only edited answers are kept
    known["similarity"] = 0.123  # a value no comparison of these texts gives: proves it was taken
    edited = {**row, "new_instruction": "a edited", "new_response": "b edited"}
    frame = pd.DataFrame([edited, row], columns=COLUMNS)
    annotated = annotate_changes(frame, known)
    assert annotated["instruction_similarity"].tolist() == [similarity("a", "a edited"), 0.123]
    assert annotated["changed_fields"].tolist() == ["instruction+response", "instruction"]


# Similarities the comparison gives today, written out: when a change to `similarity` moves one of them, bump
# COMPARISON_VERSION too, or refreshes keep taking the similarities an earlier version kept.
PINNED_SIMILARITIES = [
    ("Who wrote Hamlet?", "Who wrote Hamlet ?", 0.541),
    ("The cat sat on the mat.", "The cat sat on a mat.", 0.87),
    ("one two three four", "four three two one", 0.211),
    ("Paris is the capital of France [1].", "Paris is the capital of France.", 0.706),
    ("", "An answer where there was none", 0.0),
]


def test_similarities_are_pinned_so_a_change_to_the_comparison_bumps_its_version():
    measured = [round(similarity(before, after), 3) for before, after, _ in PINNED_SIMILARITIES]
    assert measured == [pinned for *_, pinned in PINNED_SIMILARITIES], (
        f"similarity changed: bump COMPARISON_VERSION (now {COMPARISON_VERSION}) in logic/changes.py, then update these"
    )
