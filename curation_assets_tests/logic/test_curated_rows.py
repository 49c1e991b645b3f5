"""Curated rows are made a slice of rows at a time and without a round trip of the texts through Python objects; they
are the rows the earlier rule made at once, whatever the answers hold and however many slices there are."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.logic import curation
from curation_assets.logic.changes import normalise

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
answers = st.one_of(texts, st.sampled_from([None, math.nan, "", " ", "x"]))
originals = st.one_of(texts, st.sampled_from(["", "x", " x ", None]))
feedback_rows = st.lists(
    st.fixed_dictionaries(
        {
            "instruction": originals, "context": originals, "response": originals,
            "new_instruction": answers, "new_input": answers, "new_response": answers,
        }
    ),
    max_size=25,
)  # fmt: skip


def earlier_rule(answers: pd.DataFrame) -> pd.DataFrame:
    """`_as_curated` as it was: each answer filled as Python objects then typed, every row compared at once."""

    def answer_or(answer: pd.Series, fallback) -> pd.Series:
        return answer.astype(object).where(answer.notna(), fallback).astype(str)

    curated = pd.DataFrame(
        {
            "id": answers["record_id"].astype(str),
            "category": answers["category"],
            "instruction": answer_or(answers["new_instruction"], answers["instruction"]),
            "context": answer_or(answers["new_input"], ""),
            "response": answer_or(answers["new_response"], answers["response"]),
            "annotator": answers["annotator"],
        }
    )
    same = [
        all(
            (isinstance(mine, str) and mine == theirs) or normalise(mine) == normalise(theirs)
            for mine, theirs in zip(row[:3], row[3:])
        )
        for row in zip(*(curated[f].to_numpy(dtype=object) for f in ("instruction", "context", "response")),
                       *(answers[f].to_numpy(dtype=object) for f in ("instruction", "context", "response")))
    ]  # fmt: skip
    curated["provenance"] = np.where(np.array(same, dtype=bool), "original", "human").tolist()
    return curated[curation.CURATED_COLUMNS]


def feedback_of(rows: list[dict], as_arrow: bool) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["instruction"]).reindex(
        columns=["instruction", "context", "response", "new_instruction", "new_input", "new_response"]
    )
    frame = frame.assign(record_id=[str(number) for number in range(len(frame))], category="open_qa", annotator="ana")
    # pandas' text type (Arrow, missing as NaN), as the feedback frame has it, or Python objects
    return frame.astype("str") if as_arrow else frame.astype(object)


@settings(max_examples=80, deadline=None)
@given(rows=feedback_rows, as_arrow=st.booleans(), rows_per_slice=st.integers(min_value=1, max_value=30))
def test_curated_rows_are_the_earlier_rules_rows(rows, as_arrow, rows_per_slice):
    feedback = feedback_of(rows, as_arrow)
    before = curation.COMPARED_ROWS_PER_SLICE
    curation.COMPARED_ROWS_PER_SLICE = rows_per_slice
    try:
        made = curation._as_curated(feedback)
    finally:
        curation.COMPARED_ROWS_PER_SLICE = before
    expected = earlier_rule(feedback)
    assert list(made["provenance"]) == list(expected["provenance"])
    for column in ("instruction", "context", "response"):
        # A missing original stays missing either way (NaN, which is not equal to itself in a list).
        assert made[column].fillna("<missing>").tolist() == expected[column].fillna("<missing>").tolist()
        assert str(made[column].dtype) == str(expected[column].dtype) == "str"
