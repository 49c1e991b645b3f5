"""Markdown for the Dagster UI that shows record text as text: no markup, no image, no link is ever live.

Record text comes from the source file, so it may hold anything: `<img src=...>`, `![](http://...)`,
a bare `www.host` or `http://host` (GFM makes those links), a `|` that breaks a table. Every cell is
escaped, ids included.
"""

from __future__ import annotations

import html
import re

import pandas as pd

# Every ASCII punctuation character but `&`, `<` and `>` (HTML-escaped instead), backslash-escaped: CommonMark
# shows an escaped punctuation character as itself, so no emphasis, code, link, image, table bar, heading or
# list can form; and with `:`, `.` and `@` escaped, GFM's bare-URL, `www.` and e-mail autolinks cannot either.
_MARKDOWN_SYNTAX = re.compile(r"""([!"#$%'()*+,\-./:;=?@\[\\\]^_`{|}~])""")


def inert_text(text: object, limit: int = 80) -> str:
    """One line of at most `limit` characters, shown literally by a markdown renderer."""
    one_line = " ".join(str(text)[:limit].split())
    # Backslashes first: the entities html.escape writes (`&lt;`) must stay entities.
    return html.escape(_MARKDOWN_SYNTAX.sub(r"\\\1", one_line), quote=False)


def _cell(value: object) -> str:
    # Floats as tabulate would print them; everything else as its text, never parsed as a number ("1e5" stays).
    return format(value, "g") if isinstance(value, float) else str(value)


def markdown_table(frame: pd.DataFrame, rows: int | None = 10, limit: int = 80) -> str:
    """A markdown table of the first rows (all with `rows=None`), every cell escaped."""
    shown = frame if rows is None else frame.head(rows)
    cells = shown.map(lambda value: inert_text(_cell(value), limit))
    cells.columns = [inert_text(column) for column in cells.columns]
    return cells.to_markdown(index=False, disable_numparse=True)
