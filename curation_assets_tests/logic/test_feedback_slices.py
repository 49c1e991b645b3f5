"""Reading a dataset's records into the feedback frame a slice at a time gives the frame made of every record at once,
and takes the records from the reader no faster than it turns them into rows."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.argilla_adapter import mapping
from curation_assets.argilla_adapter.mapping import feedback_frame, feedback_rows, read_feedback_frame

USERS = {"u-ana": "ana", "u-bruno": "bruno"}
STATUSES = ["submitted", "discarded", "draft"]


def raw_record(number: int, answers: list[tuple[str, str]]) -> dict:
    """A record as the server lists it, with one response per (user id, status)."""
    return {
        "external_id": str(number),
        "fields": {"instruction": f"q{number}", "context": "" if number % 3 else f"c{number}", "response": f"a{number}",
                   "category": "open_qa"},
        "metadata": {},
        "responses": [
            {"user_id": user, "status": status,
             "values": {} if status == "discarded" else {"new-instruction": {"value": f"q{number}!"}},
             "inserted_at": f"2026-12-02T10:{number % 60:02d}:00", "updated_at": f"2026-12-02T11:{number % 60:02d}:00.5"}
            for user, status in answers
        ],
    }  # fmt: skip


records_strategy = st.lists(
    st.lists(st.tuples(st.sampled_from(["u-ana", "u-bruno", "u-gone"]), st.sampled_from(STATUSES)), max_size=2),
    max_size=40,
).map(lambda answers: [raw_record(number, mine) for number, mine in enumerate(answers)])


@settings(max_examples=60, deadline=None)
@given(records=records_strategy, slice_size=st.integers(min_value=1, max_value=50))
def test_sliced_read_is_the_frame_of_every_record_at_once(records, slice_size):
    whole = feedback_frame(feedback_rows(records, "ana", USERS))
    sliced, records_read = read_feedback_frame(iter(records), "ana", USERS, records_per_slice=slice_size)
    assert records_read == len(records)
    pd.testing.assert_frame_equal(sliced, whole)


def test_no_record_gives_the_empty_frame_with_its_columns_and_types():
    empty, records_read = read_feedback_frame(iter([]), "ana", USERS)
    assert records_read == 0
    pd.testing.assert_frame_equal(empty, feedback_frame([]))


def test_records_are_taken_from_the_reader_one_slice_ahead_at_most(monkeypatch):
    taken = []

    def reader():
        for number in range(25):
            taken.append(number)
            yield raw_record(number, [("u-ana", "submitted")])

    made_after = []
    real_rows = mapping.feedback_rows

    def rows_noting_progress(records, *arguments):
        made_after.append((len(records), len(taken)))
        return real_rows(records, *arguments)

    monkeypatch.setattr(mapping, "feedback_rows", rows_noting_progress)
    frame, records_read = read_feedback_frame(reader(), "ana", USERS, records_per_slice=10)
    assert records_read == 25 and list(frame["record_id"]) == [str(number) for number in range(25)]
    # Each slice is turned into rows before the next is read: 10 taken for the first, 20 for the second, all for the
    # last (5). A reader whose records were all taken first would show 25 for each.
    assert made_after == [(10, 10), (10, 20), (5, 25)]


@pytest.mark.parametrize("slice_size", [1, 7, 100])
def test_a_slice_of_only_pending_records_keeps_the_answer_columns_typed_as_the_whole(slice_size):
    records = [raw_record(number, []) for number in range(5)] + [raw_record(5, [("u-ana", "submitted")])]
    sliced, _ = read_feedback_frame(iter(records), "ana", USERS, records_per_slice=slice_size)
    pd.testing.assert_frame_equal(sliced, feedback_frame(feedback_rows(records, "ana", USERS)))
