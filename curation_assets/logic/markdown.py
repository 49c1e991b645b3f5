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
    # Floats in their shortest form; everything else as its text, never parsed as a number ("1e5" stays).
    return format(value, "g") if isinstance(value, float) else str(value)


def markdown_table(frame: pd.DataFrame, rows: int | None = 10, limit: int = 80) -> str:
    """A markdown table of the first rows (all with `rows=None`), every cell escaped."""
    shown = frame if rows is None else frame.head(rows)
    header = [inert_text(column) for column in shown.columns]
    body = [[inert_text(_cell(value), limit) for value in row] for row in shown.itertuples(index=False)]
    # Written here rather than by `DataFrame.to_markdown`: tabulate takes a row whose first cell is "\x01" for its
    # separating-line marker and draws a rule in place of the record's text.
    return "\n".join("| " + " | ".join(line) + " |" for line in [header, ["---"] * len(header), *body])
