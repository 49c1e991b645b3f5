"""Change detection, statistics and curation on small hand-made feedback."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.defs.publishing import push_to_hub, write_curated
from curation_assets.logic.changes import annotate_changes, change_label, changed_fields, normalise, similarity
from curation_assets.logic.curation import curate, dataset_card, size_category
from curation_assets.logic.statistics import compute_statistics, markdown_report, summary_figure, summary_png

text = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40)


@given(original=text, padding=st.sampled_from([" ", "\n", "\t ", "  \n "]))
def test_whitespace_only_edits_are_not_changes(original, padding):
    padded = padding + padding.join(original.split()) + padding
    assert (
        changed_fields(
            {"instruction": original, "context": original, "response": original},
            {"new_instruction": padded, "new_input": padded, "new_response": padded},
        )
        == []
    )


@given(original=text, edited=text)
def test_a_change_is_reported_exactly_when_normalised_texts_differ(original, edited):
    fields = changed_fields(
        {"instruction": original, "context": "", "response": "r"}, {"new_instruction": edited, "new_response": "r"}
    )
    assert (fields == ["instruction"]) == (normalise(original) != normalise(edited))
    assert 0.0 <= similarity(original, edited) <= 1.0


def test_missing_optional_input_equals_empty_context():
    assert (
        changed_fields(
            {"instruction": "i", "context": None, "response": "r"}, {"new_instruction": "i", "new_response": "r"}
        )
        == []
    )
    assert change_label(["instruction", "response"]) == "instruction+response" and change_label([]) == "none"


def feedback_frame():
    base = {"shard": "ana", "annotator": "ana", "category": "open_qa", "context": "", "inserted_at": None}
    rows = [
        {**base, "record_id": "1", "status": "submitted", "instruction": "Q1", "response": "A1",
         "new_instruction": "Q1", "new_input": None, "new_response": "A1 better", "updated_at": pd.Timestamp("2026-01-01", tz="UTC")},
        {**base, "record_id": "2", "status": "submitted", "instruction": "Q2", "response": "A2",
         "new_instruction": " Q2 ", "new_input": "", "new_response": "A2", "updated_at": pd.Timestamp("2026-01-01", tz="UTC")},
        {**base, "record_id": "3", "status": "discarded", "instruction": "Q3", "response": "A3",
         "new_instruction": None, "new_input": None, "new_response": None, "updated_at": None},
        {**base, "record_id": "4", "status": "pending", "annotator": "ana", "instruction": "Q4", "response": "A4",
         "new_instruction": None, "new_input": None, "new_response": None, "updated_at": None},
        {**base, "record_id": "5", "status": "draft", "annotator": "bruno", "category": "closed_qa", "instruction": "Q5",
         "response": "A5", "new_instruction": "x", "new_input": None, "new_response": None, "updated_at": None},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_statistics_count_statuses_and_changed_fields():
    statistics = compute_statistics(feedback_frame())
    assert dict(zip(statistics.status_counts["status"], statistics.status_counts["count"])) == {
        "submitted": 2, "discarded": 1, "draft": 1, "pending": 1,
    }  # fmt: skip
    assert dict(zip(statistics.change_counts["changed_fields"], statistics.change_counts["count"])) == {
        "response": 1,
        "none": 1,
    }
    field_change = statistics.field_change.set_index("field")
    assert field_change.loc["response", "changed"] == 1 and field_change.loc["instruction", "changed"] == 0
    by_annotator = statistics.by_annotator.set_index("annotator")
    assert by_annotator.loc["bruno", "draft"] == 1 and by_annotator.loc["ana", "submitted_changed_share"] == 0.5
    png = summary_png(statistics)
    assert png.startswith(b"\x89PNG") and len(png) < 60_000
    # Few records: the count axes still tick at whole numbers only.
    for axis in summary_figure(statistics).axes:
        assert all(float(tick).is_integer() for tick in axis.get_yticks()), axis.get_yticks()
    report = markdown_report(statistics.tables(), png)
    assert "data:image/png;base64," in report and "| submitted" in report


def test_curation_keeps_submitted_answers_only(tmp_path):
    curated = curate(feedback_frame())
    assert list(curated["id"]) == ["1", "2"]
    assert curated.set_index("id").loc["1", "response"] == "A1 better"
    assert dict(zip(curated["id"], curated["provenance"])) == {"1": "human", "2": "original"}
    card = dataset_card(
        curated,
        "stats",
        project="demo",
        source="file:data/test.jsonl",
        license="cc-by-sa-3.0",
        attribution="Copyright Databricks",
    )
    assert "license: cc-by-sa-3.0" in card and "`file:data/test.jsonl`" in card and "Copyright Databricks" in card
    assert "- n<1K" in card and "dolly" not in card.lower().replace("databricks", ""), (
        "the card names the declared source only"
    )
    paths = write_curated(curated, card, tmp_path)
    assert pd.read_parquet(paths["parquet"]).equals(curated)
    import datasets

    assert datasets.load_from_disk(str(paths["hf_dataset"])).num_rows == 2


def test_size_category_follows_the_number_of_records():
    assert [size_category(n) for n in (0, 999, 1_000, 15_000, 150_000, 2_000_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "10K<n<100K",
        "100K<n<1M",
        "1M<n<10M",
    ]


def test_push_to_hub_without_token_says_what_to_set(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    try:
        push_to_hub(curate(feedback_frame()), "card", "someone/curated")
    except PermissionError as error:
        assert "HF_TOKEN" in str(error) and "someone/curated" in str(error)
    else:
        raise AssertionError("expected a PermissionError")


def test_annotate_changes_on_empty_frame():
    assert annotate_changes(feedback_frame().iloc[0:0])["changed_fields"].tolist() == []


MAYBE_TEXT = st.one_of(st.none(), st.just(float("nan")), st.sampled_from(["", " ", "a", "a b", " a  b\n", "b"]))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(*[st.sampled_from(["", "a", "a b", " a\tb "])] * 3, *[MAYBE_TEXT] * 3), min_size=1, max_size=6)
)
def test_provenance_is_original_exactly_when_every_normalised_text_is_kept(rows):
    """The curated texts (an answer, else the original; a missing input is "no input") against the originals, each
    normalised: "original" when all three are equal, else "human"."""
    frame = pd.DataFrame(
        [
            {"record_id": str(index), "shard": "ana", "annotator": "ana", "status": "submitted", "category": "c",
             "instruction": instruction, "context": context, "response": response, "new_instruction": new_instruction,
             "new_input": new_input, "new_response": new_response, "updated_at": pd.Timestamp("2026-01-01", tz="UTC")}
            for index, (instruction, context, response, new_instruction, new_input, new_response) in enumerate(rows)
        ]
    )  # fmt: skip

    def kept(answer, original, fallback):
        final = fallback if answer is None or answer != answer else answer
        return normalise(final) == normalise(original)

    expected = {
        str(index): "original"
        if kept(new_instruction, instruction, instruction)
        and kept(new_input, context, "")
        and kept(new_response, response, response)
        else "human"
        for index, (instruction, context, response, new_instruction, new_input, new_response) in enumerate(rows)
    }
    curated = curate(frame)
    assert dict(zip(curated["id"], curated["provenance"])) == expected
