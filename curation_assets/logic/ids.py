"""Membership tests on id columns."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def ids_in(column: pd.Series, ids: Iterable) -> pd.Series:
    """`column.isin(ids)`, both sides compared as text, aligned with `column`.

    pandas 3 keeps text as Arrow strings, and its `isin` on them checks value by value in Python:
    59 ms for 15,000 ids against 15,000, and 4.3 ms through this function on Python objects (pandas
    3.1, this machine). Every refreshed asset asks it of the whole feedback, and the push of every
    shard.
    """
    members = pd.Series(list(ids) if not isinstance(ids, pd.Series) else ids, dtype=object)
    return column.astype(str).astype(object).isin(members.astype(str).astype(object))
