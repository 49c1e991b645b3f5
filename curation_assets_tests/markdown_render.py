"""Markdown as a reader sees it: rendered by a CommonMark renderer with GFM tables (markdown-it-py), then read
back as the elements it made and the text it shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from markdown_it import MarkdownIt

# What a table preview may become; anything else (img, a, script, style, form, input, iframe, ...) is
# markup from the data coming alive.
TABLE_ELEMENTS = {"table", "thead", "tbody", "tr", "th", "td", "p", "em", "strong", "code", "br"}

_RENDERER = MarkdownIt("commonmark").enable("table").enable("strikethrough")


@dataclass
class Rendered:
    elements: list[tuple[str, dict]] = field(default_factory=list)
    cells: list[str] = field(default_factory=list)
    text: str = ""


class _Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rendered = Rendered()
        self._cell: list[str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.rendered.elements.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rendered.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def close(self):
        super().close()
        self.rendered.text = "".join(self._text)


def render_markdown(markdown: str) -> Rendered:
    reader = _Reader()
    reader.feed(_RENDERER.render(markdown))
    reader.close()
    return reader.rendered


def unexpected_elements(markdown: str, allowed: set[str] = TABLE_ELEMENTS) -> list[tuple[str, dict]]:
    return [(tag, attrs) for tag, attrs in render_markdown(markdown).elements if tag not in allowed]
