"""Markdown shown in the Dagster UI keeps record text (ids included) as text: nothing renders as markup, no image,
link or autolink forms; checked on the markdown itself and as a CommonMark + GFM-tables renderer shows it."""

import ast
import re
import string
from pathlib import Path

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

import curation_assets
from curation_assets.logic.markdown import inert_text, markdown_table
from curation_assets.logic.statistics import markdown_report, text_bar_chart
from curation_assets_tests.markdown_render import render_markdown, unexpected_elements

# Text that becomes live markup in a markdown preview unless escaped: what the probe used, and GFM's autolinks.
HOSTILE_CELLS = [
    "![x](http://127.0.0.1:9/pixel.png)",
    "<img src=http://127.0.0.1:9/img.png>",
    '<form action="http://127.0.0.1:9/steal"><input type="password" name="pw"><button>Go</button></form>',
    "<style>body { background: red }</style>",
    '<div style="position:fixed;inset:0;z-index:99999;background:white">covered</div>',
    "<script>alert(1)</script>",
    "[link](http://127.0.0.1:9/) <http://127.0.0.1:9/auto> http://127.0.0.1:9/bare www.example.com a@b.example",
    "*em* **strong** `code` ~~gone~~ a|b # not a heading $x^2$ &amp; &lt;b&gt;",
    "1e5",
]


def test_images_links_html_and_autolinks_in_any_cell_stay_text():
    frame = pd.DataFrame({"id": HOSTILE_CELLS, "text": list(reversed(HOSTILE_CELLS))})
    table = markdown_table(frame, rows=None, limit=200)
    assert unexpected_elements(table) == []
    shown = render_markdown(table).cells
    assert shown == ["id", "text", *[cell for pair in zip(HOSTILE_CELLS, reversed(HOSTILE_CELLS)) for cell in pair]]
    assert len(table.splitlines()) == 2 + len(HOSTILE_CELLS), "no cell broke the table"
    # GFM autolinks (bare URLs, www., e-mail) are not in the renderer above: none can start in the markdown itself.
    assert not re.search(r"(?i)https?:|www\.|\w@\w", table)


def _unescaped_punctuation(markdown: str) -> list[str]:
    """ASCII punctuation left as syntax: what remains once backslash escapes and the three HTML entities are removed."""
    bare = re.sub(r"\\.|&(amp|lt|gt);", "", markdown)
    return [char for char in bare if char in string.punctuation]


@given(st.text(max_size=200))
@example("![x](http://host/a.png) www.host a@b.co")
def test_a_cell_never_opens_a_link_image_or_tag_and_shows_its_text(text):
    shown = inert_text(text, limit=200)
    assert "\n" not in shown and _unescaped_punctuation(shown) == []
    table = markdown_table(pd.DataFrame({"cell": [text]}), limit=200)
    assert unexpected_elements(table) == []
    # CommonMark replaces NUL by U+FFFD; everything else reads back as the text, on one line.
    expected = " ".join(text[:200].split()).replace("\x00", "\ufffd")
    assert render_markdown(table).cells == ["cell", expected]


def test_chart_labels_and_report_tables_are_escaped():
    chart = text_bar_chart(HOSTILE_CELLS[:3], [3, 2, 1], "count")
    assert unexpected_elements(chart) == []
    tables = {
        "status_counts": pd.DataFrame({"status": HOSTILE_CELLS[:2], "count": [1, 2]}),
        "change_counts": pd.DataFrame({"changed_fields": [HOSTILE_CELLS[2]], "count": [1]}),
        "field_change": pd.DataFrame({"field": [HOSTILE_CELLS[3]], "share_changed": [0.25]}),
        "flag_precision": pd.DataFrame({"flag": [HOSTILE_CELLS[6]], "precision": [0.5]}),
    }
    report = markdown_report(tables, png=None)
    assert unexpected_elements(report) == []
    cells = render_markdown(report).cells
    assert HOSTILE_CELLS[0] in cells and HOSTILE_CELLS[3] in cells and "share_changed" in cells and "0.25" in cells


# What builds the markdown of a `MetadataValue.md` in curation_assets/defs: escaping builders, or fixed literals.
ESCAPING_BUILDERS = {"markdown_table", "text_bar_chart", "markdown_report"}


def test_every_markdown_metadata_value_in_the_definitions_is_built_escaped():
    """An audit of the code: each `dg.MetadataValue.md(...)` argument is an escaping builder's output, a fixed
    string, or a chart of `inline_charts` (text_bar_chart's); a new preview that pastes data in fails here."""
    found = []
    for path in sorted((Path(curation_assets.__file__).parent / "defs").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("MetadataValue.md"):
                found.append((path.name, node.lineno, _built_escaped(node.args[0])))
    assert len(found) >= 10, found
    assert [entry for entry in found if not entry[2]] == []


def _built_escaped(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.IfExp):
        return _built_escaped(node.body) and _built_escaped(node.orelse)
    if isinstance(node, ast.Call):
        return ast.unparse(node.func).split(".")[-1] in ESCAPING_BUILDERS
    # `{name: dg.MetadataValue.md(chart) for name, chart in inline_charts(statistics).items()}`
    return isinstance(node, ast.Name) and node.id == "chart"
