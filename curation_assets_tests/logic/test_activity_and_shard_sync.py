"""The sensor's decision and the shard sync plan, as plain functions over plain data."""

import hashlib
import json

import pandas as pd

from curation_assets.logic.activity import ArgillaActivity, SensorMemory, decide
from curation_assets.logic.inert_display import DISPLAY_MARKER, display_copy
from curation_assets.logic.shard_sync import plan_shard_sync, quality_metadata, record_fingerprint, shard_fingerprint


def test_decide_skips_without_news_and_names_what_changed():
    seen = ArgillaActivity(annotators=["ana", "bruno"], finished_by_dataset={"ana": {"submitted": 1, "discarded": 0}})
    first = decide(seen, known_partitions={"ana", "bruno"}, cursor=None)
    assert first.refresh and first.new_annotators == [] and "new submissions or discards in: ana" in first.reason
    assert SensorMemory.from_cursor(first.cursor).finished_by_dataset == {"ana": {"submitted": 1, "discarded": 0}}

    quiet = decide(seen, known_partitions={"ana", "bruno"}, cursor=first.cursor)
    assert (
        not quiet.refresh
        and quiet.new_annotators == []
        and quiet.reason == "no new annotators, submissions or discards"
    )

    busier = ArgillaActivity(
        annotators=["ana", "bruno", "chen"],
        finished_by_dataset={"ana": {"submitted": 1, "discarded": 0}, "bruno": {"submitted": 0, "discarded": 1}},
    )
    news = decide(busier, known_partitions={"ana", "bruno"}, cursor=first.cursor)
    assert news.new_annotators == ["chen"] and news.refresh
    assert news.reason == "new annotators: chen; new submissions or discards in: bruno"


def frame(*rows) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": str(i), "category": "open_qa", "instruction": f"Q{i}?", "context": "", "response": text}
            for i, text in rows
        ]
    )


def stored(row: dict, responses=(), metadata=None, before_display_copies=False) -> dict:
    """A record as Argilla stores it: its uuid, external id, fields, metadata and responses; pushed as the pipeline
    pushes now (display copies, marked) or as it did before (raw text, no marker)."""
    fields = {name: row[name] for name in ("category", "instruction", "context", "response")}
    if not before_display_copies:
        fields = {name: display_copy(value) for name, value in fields.items()}
    return {
        "id": f"uuid-{row['id']}",
        "external_id": row["id"],
        "fields": fields,
        "metadata": {**(metadata or {}), **({} if before_display_copies else DISPLAY_MARKER)},
        "responses": list(responses),
    }


def signals_for(planned: pd.DataFrame, priority: int = 0) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"id": record_id, "flags": [], "priority": priority, "duplicate_group": "", "duplicate_group_size": 1,
             "citation_markers": 0, "instruction_words": 1, "context_words": 0, "response_words": 1}
            for record_id in planned["id"]
        ]
    )  # fmt: skip


def test_plan_shard_sync_pushes_what_changed_and_never_touches_answers():
    planned = frame((1, "same"), (2, "changed now"), (3, "new"), (4, "answered, changed"))
    signals = signals_for(planned)
    metadata = quality_metadata(signals.iloc[0].to_dict())
    existing = [
        stored(planned.iloc[0].to_dict(), metadata=metadata),
        stored({**planned.iloc[1].to_dict(), "response": "old text"}, metadata=metadata),
        stored({**planned.iloc[3].to_dict(), "response": "old text"}, responses=[{"status": "submitted"}], metadata=metadata),
        stored({"id": "9", "category": "open_qa", "instruction": "gone?", "context": "", "response": "x"}),
        stored({"id": "8", "category": "open_qa", "instruction": "gone but answered", "context": "", "response": "x"},
               responses=[{"status": "discarded"}]),
    ]  # fmt: skip
    sync = plan_shard_sync(planned, existing, signals)
    assert list(sync["push"]["id"]) == ["2", "3"], "changed and new records; not the unchanged, not the answered"
    assert sync["held_answered_ids"] == ["4"], "an answered record whose source changed is left as annotated"
    assert sync["remove_record_uuids"] == ["uuid-9"], "withdrawn only if nobody answered it"
    assert sync["answered_outside_plan"] == ["8"] and sync["unchanged"] == 1

    # New quality metadata alone is a change: the record is pushed again so its metadata stays current.
    flagged = plan_shard_sync(planned, existing, signals_for(planned, priority=3))
    assert "1" in set(flagged["push"]["id"])
    assert sync["display_upgrades"] == [], "every record already holds display copies"


def test_an_empty_dataset_gets_every_planned_record_as_the_row_by_row_path_would_push_it():
    planned = frame((1, "a"), (2, "b"), (3, "c")).iloc[::-1].set_axis([7, 8, 9])
    sync = plan_shard_sync(planned, [], signals_for(planned))
    pd.testing.assert_frame_equal(sync["push"], pd.DataFrame(planned.to_dict("records"), columns=planned.columns))
    assert (sync["remove_record_uuids"], sync["held_answered_ids"], sync["answered_outside_plan"]) == ([], [], [])
    assert sync["display_upgrades"] == [] and sync["unchanged"] == 0


def test_records_pushed_before_display_copies_are_brought_up_to_date_and_answers_stay():
    """A dataset an earlier version filled with raw text: unanswered records are pushed again (as display copies),
    answered ones get display copies of their own stored text, and neither counts as changed at the source."""
    markup = "<img src=x onerror=alert(1)> &amp; &lt;b&gt;"
    planned = frame((1, markup), (2, markup), (3, "answered, changed at the source"))
    signals = signals_for(planned)
    metadata = quality_metadata(signals.iloc[0].to_dict())
    rows = [row.to_dict() for _, row in planned.iterrows()]
    existing = [
        stored(rows[0], metadata=metadata, before_display_copies=True),
        stored(rows[1], metadata=metadata, responses=[{"status": "submitted"}], before_display_copies=True),
        stored({**rows[2], "response": "old text"}, metadata=metadata, responses=[{"status": "draft"}],
               before_display_copies=True),
    ]  # fmt: skip
    sync = plan_shard_sync(planned, existing, signals)
    assert list(sync["push"]["id"]) == ["1"], "the unanswered raw record is pushed again, as a display copy"
    assert [record["external_id"] for record in sync["display_upgrades"]] == ["2", "3"]
    assert sync["held_answered_ids"] == ["3"], "only a real change at the source is one"

    # Once pushed the new way, the same plan finds nothing to do: the markup compares equal to its display copy.
    now = [stored(rows[0], metadata=metadata), stored(rows[1], metadata=metadata, responses=[{"status": "submitted"}])]
    again = plan_shard_sync(planned.iloc[:2], now, signals)
    assert again["push"].empty and again["display_upgrades"] == [] and again["unchanged"] == 2


def test_shard_fingerprint_changes_with_text_metadata_and_dataset_but_not_order():
    planned = frame((1, "a"), (2, "b"))
    signals = signals_for(planned)
    base = shard_fingerprint(planned, "dataset-1", signals)
    assert shard_fingerprint(planned.iloc[::-1], "dataset-1", signals) == base, "row order does not matter"
    assert shard_fingerprint(planned, "dataset-2", signals) != base, "another dataset is another push"
    assert shard_fingerprint(frame((1, "a"), (2, "b!")), "dataset-1", signals) != base
    assert shard_fingerprint(planned, "dataset-1", signals_for(planned, priority=2)) != base
    assert record_fingerprint(planned.iloc[0].to_dict()) != record_fingerprint(planned.iloc[1].to_dict())
    before = hashlib.blake2b(b"dataset-1", digest_size=16)
    for row in planned.sort_values("id").to_dict("records"):
        before.update(
            f"{row['id']}:{record_fingerprint(row)}:{json.dumps(quality_metadata(signals.iloc[0].to_dict()), sort_keys=True)};".encode()
        )
    assert base != before.hexdigest(), "a push made before display copies is not taken for this one"
