"""Markdown shown in the Dagster UI keeps record text (ids included) as text: nothing renders as markup."""

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from curation_assets.logic.markdown import inert_text, markdown_table


def test_images_links_and_html_in_any_cell_stay_text():
    frame = pd.DataFrame(
        {
            "id": ["![x](http://evil.example/a.png)"],
            "text": ["<img src=http://evil.example/b.png> [link](http://evil.example) a|b *bold* `code`"],
        }
    )
    table = markdown_table(frame, limit=200)
    assert "![" not in table and "](" not in table.replace("\\](", "")
    assert "<img" not in table and "&lt;img" in table
    assert "a\\|b" in table and "\\*bold\\*" in table and "\\`code\\`" in table
    assert len(table.splitlines()) == 3, "one header, one rule, one row: no cell broke the table"


@given(st.text(max_size=200))
def test_a_cell_never_opens_a_link_image_or_tag(text):
    shown = inert_text(text, limit=200)
    assert "\n" not in shown and "<" not in shown
    unescaped_brackets = [i for i, char in enumerate(shown) if char in "[]|" and (i == 0 or shown[i - 1] != "\\")]
    assert not unescaped_brackets
