"""Building the records of a push: the collector pause around it, and suggestions from the suggested answers."""

import gc

import pytest

from curation_assets.argilla_adapter.mapping import collector_paused, suggested_answers, to_argilla_records
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
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
