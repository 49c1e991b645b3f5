"""Building the records of a push: the collector pause around it, suggestions from the suggested answers, and display
copies in the fields while suggestions and what the pipeline reads keep the exact text."""

import gc

import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from curation_assets.argilla_adapter.mapping import (
    collector_paused,
    display_upgrades,
    feedback_rows,
    suggested_answers,
    to_argilla_records,
)
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.logic.inert_display import DISPLAY_MARKER, display_copy, exact_fields, original_text
from curation_assets.logic.quality import compute_quality_signals


@pytest.fixture
def collector_enabled():
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if was_enabled else gc.disable()


def test_collector_is_paused_inside_and_enabled_again_after_even_on_error(collector_enabled):
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the block fails")
    assert gc.isenabled()


def test_collector_paused_leaves_a_disabled_collector_disabled(collector_enabled):
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_records_carry_the_suggested_answers_in_order():
    excerpt = load_shipped_dolly_excerpt()
    signals = compute_quality_signals(excerpt)
    records = to_argilla_records(excerpt, signals)
    signal_by_id = signals.set_index("id", drop=False).to_dict("index")
    assert [record.id for record in records] == list(excerpt["id"])
    for record, row in zip(records, excerpt.to_dict("records")):
        built = [(s.question_name, s.value, s.agent, s.score) for s in record.suggestions]
        assert built == suggested_answers(row, signal_by_id[row["id"]])
    assert gc.isenabled()


# -- display copies: what annotators see is escaped, what the pipeline reads is exact -------------------------

MARKUP = (
    '<form action="http://127.0.0.1:9/"><input type=password></form> &amp; &lt;b&gt; ![x](http://127.0.0.1:9/a.png)'
)


@given(st.text())
@example("&amp;lt; &lt;&gt; &amp;amp; &#60; & < >")
def test_a_display_copy_holds_no_tag_and_gives_back_the_exact_text(text):
    shown = display_copy(text)
    assert "<" not in shown and ">" not in shown
    assert original_text(shown) == text


def test_records_show_display_copies_and_suggest_the_exact_text():
    row = {"id": "r1", "category": "open_qa", "instruction": MARKUP, "context": "", "response": f"{MARKUP} ünï 🧪"}
    (record,) = to_argilla_records(pd.DataFrame([row]))
    assert record.fields["instruction"] == display_copy(MARKUP) and "<" not in record.fields["response"]
    assert record.metadata.to_dict() == DISPLAY_MARKER
    assert {s.question_name: s.value for s in record.suggestions} == {
        "new-instruction": MARKUP,
        "new-response": f"{MARKUP} ünï 🧪",
    }


def test_feedback_reads_the_exact_text_of_display_copies_and_of_records_pushed_before_them():
    pushed = {"instruction": MARKUP, "context": "&lt;", "response": "a < b", "category": "open_qa"}
    marked = {
        "external_id": "r1",
        "fields": {k: display_copy(v) for k, v in pushed.items()},
        "metadata": DISPLAY_MARKER,
    }
    legacy = {"external_id": "r2", "fields": dict(pushed), "metadata": {}}
    rows = feedback_rows([marked, legacy], "ana", {})
    assert [{k: row[k] for k in pushed} for row in rows] == [pushed, pushed]
    assert exact_fields(marked, ["instruction", "not_a_field"]) == {"instruction": MARKUP}
    assert exact_fields(legacy, ["response"]) == {"response": "a < b"}


def test_display_upgrades_rewrite_only_records_pushed_before_display_copies():
    legacy = {"external_id": "r2", "fields": {"instruction": MARKUP, "context": None}, "metadata": {"priority": 2}}
    marked = {"external_id": "r1", "fields": {"instruction": display_copy(MARKUP)}, "metadata": DISPLAY_MARKER}
    (upgrade,) = display_upgrades([legacy, marked])
    assert upgrade.id == "r2" and upgrade.fields["instruction"] == display_copy(MARKUP)
    assert "context" not in upgrade.fields and upgrade.metadata.to_dict() == {"priority": 2, **DISPLAY_MARKER}
    assert list(upgrade.suggestions) == [] and list(upgrade.responses) == [], "answers and suggestions not sent"
    assert exact_fields({"fields": upgrade.fields, "metadata": upgrade.metadata.to_dict()})["instruction"] == MARKUP
