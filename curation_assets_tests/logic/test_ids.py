import pandas as pd

from curation_assets.logic.ids import ids_in


def test_ids_in_answers_like_isin_on_text_whatever_the_ids_come_as():
    column = pd.Series(["a", "b", "7", None, "c"], index=[10, 11, 12, 13, 14])
    for ids in (["b", "7"], {"b", "7"}, pd.Series(["7", "b"]), pd.Index(["b", "7"]), [7, "b"]):
        found = ids_in(column, ids)
        assert list(found.index) == [10, 11, 12, 13, 14], "aligned with the column"
        assert list(found) == [False, True, True, False, False], ids
    assert not ids_in(column, []).any()
    assert list(ids_in(pd.Series([1, 2, 3]), ["2"])) == [False, True, False], "ids compared as text"
