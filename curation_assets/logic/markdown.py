"""Markdown for the Dagster UI that shows record text as text: no markup, no image, no link is ever live.

Record text comes from the source file, so it may hold anything: `<img src=...>`, `![](http://...)`,
a `|` that breaks a table. Every cell is escaped, ids included.
"""

from __future__ import annotations

import html
import re

import pandas as pd

# Characters that start markdown syntax inside a table cell: emphasis, strikethrough, code, table
# bars, and the brackets of links and images (without `[` no `![...](...)` can form). Line-start
# syntax (#, -, >) cannot occur: a cell is one line that begins with `|`; `<` and `&` are HTML-escaped.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]|~])")


def inert_text(text: object, limit: int = 80) -> str:
    """One line of at most `limit` characters, shown literally by a markdown renderer."""
    one_line = " ".join(str(text)[:limit].split())
    return _MARKDOWN_SYNTAX.sub(r"\\\1", html.escape(one_line, quote=False))


def markdown_table(frame: pd.DataFrame, rows: int = 10, limit: int = 80) -> str:
    """A markdown table of the first rows, every cell escaped."""
    shortened = frame.head(rows).astype(str).apply(lambda column: column.map(lambda cell: inert_text(cell, limit)))
    shortened.columns = [inert_text(column) for column in shortened.columns]
    return shortened.to_markdown(index=False)


def inert_block(text: object) -> str:
    """Text of any length shown literally by a markdown renderer: every line kept, no markup, link or image live."""
    lines = str(text).splitlines() or [""]
    return "  \n".join(_MARKDOWN_SYNTAX.sub(r"\\\1", html.escape(line, quote=False)) for line in lines)
