import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from curation_assets.logic.ids import ids_in


def test_ids_in_answers_like_isin_on_text_whatever_the_ids_come_as():
    column = pd.Series(["a", "b", "7", None, "c"], index=[10, 11, 12, 13, 14])
    for ids in (["b", "7"], {"b", "7"}, pd.Series(["7", "b"]), pd.Index(["b", "7"]), [7, "b"]):
        found = ids_in(column, ids)
        assert list(found.index) == [10, 11, 12, 13, 14], "aligned with the column"
        assert list(found) == [False, True, True, False, False], ids
    assert not ids_in(column, []).any()
    assert list(ids_in(pd.Series([1, 2, 3]), ["2"])) == [False, True, False], "ids compared as text"


@given(
    column=st.lists(st.sampled_from(["1", "2", "10", "a", "é", ""]), max_size=30),
    ids=st.lists(st.sampled_from(["1", "10", "é", "", "x"]), max_size=8),
)
def test_arrow_text_ids_answer_as_python_objects_do(column, ids):
    # Text ids without gaps go through Arrow's is_in; the same ids as Python objects through pandas' isin.
    arrow, objects = pd.Series(column, dtype="str"), pd.Series(column, dtype=object)
    expected = objects.isin(ids)
    for members in (ids, set(ids), pd.Series(ids, dtype="str")):
        pd.testing.assert_series_equal(ids_in(arrow, members), expected)
        pd.testing.assert_series_equal(ids_in(objects, members), expected)
