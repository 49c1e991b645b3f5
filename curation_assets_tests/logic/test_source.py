"""Loading and validation: clear errors, quarantine with reasons, no valid row lost."""

import json

import pandas as pd
import pytest

from curation_assets.logic.source import (
    SHIPPED_EXCERPT,
    SourceError,
    load_shipped_dolly_excerpt,
    load_source,
    validate_records,
)


def test_shipped_excerpt_is_the_real_dolly_sample_with_original_ids():
    frame = load_shipped_dolly_excerpt()
    assert len(frame) == 37
    assert list(frame["id"][:3]) == ["0", "1", "2"] and list(frame["id"][-3:]) == ["15012", "15013", "15014"]
    assert frame.loc[0, "instruction"] == "When did Virgin Australia start operating?"
    valid, quarantine = validate_records(frame)
    assert len(valid) == 37 and quarantine.empty


def test_local_files_in_every_format_with_column_mapping(tmp_path):
    rows = [{"prompt": "Q?", "answer": "A.", "ctx": None, "category": "open_qa"}]
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    mapping = {"prompt": "instruction", "answer": "response", "ctx": "context"}
    for name in ("d.parquet", "d.csv", "d.jsonl"):
        frame = load_source(str(tmp_path / name), column_mapping=mapping)
        valid, quarantine = validate_records(frame)
        assert list(valid["instruction"]) == ["Q?"] and list(valid["context"]) == [""], name
        assert list(valid["id"]) == ["0"], "row position stands in for a missing id"


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ('{"instruction": "a", "response": "b"}\n{"instruction": "tru', "truncated or corrupt"),
        ('{"question": "a", "answer": "b"}', "missing column(s) ['instruction', 'response', 'category']"),
    ],
)
def test_bad_files_give_actionable_errors(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        load_source(str(path))


def test_missing_file_and_unreachable_hub_name_the_source(tmp_path, monkeypatch):
    with pytest.raises(SourceError, match="does not exist"):
        load_source(str(tmp_path / "nope.parquet"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError, match="argilla/databricks-dolly-15k-curated-multilingual.*local .jsonl"):
        load_source("argilla/databricks-dolly-15k-curated-multilingual", split="en")


def test_validation_quarantines_each_defect_with_its_reason():
    good = {"id": "1", "instruction": "Q?", "context": None, "response": "A.", "category": "open_qa"}
    frame = pd.DataFrame(
        [
            good,
            {**good, "id": "2", "instruction": ""},
            {**good, "id": "3", "response": 42},
            {**good, "id": "4", "category": "poetry"},
            {**good, "id": "1", "response": "duplicate"},
            {**good, "id": "6", "context": ["a", "list"]},
            {**good, "id": "7", "instruction": "bad \ud800 surrogate"},
            {**good, "id": "8", "response": "<script>alert(1)</script>"},
        ],
        dtype=object,  # as a JSON reader hands over mixed and undecodable values
    )
    valid, quarantine = validate_records(frame)
    assert list(valid["id"]) == ["1", "8"], "markup is text, not a defect; valid rows all kept"
    reasons = dict(zip(quarantine["id"], quarantine["reason"]))
    assert quarantine.set_index("id").loc["7", "instruction"] == "bad \\ud800 surrogate"
    assert reasons == {
        "2": "instruction is empty",
        "3": "response is int, not text",
        "4": "unknown category 'poetry' (expected one of ['brainstorming', 'classification', 'closed_qa', "
        "'creative_writing', 'general_qa', 'information_extraction', 'open_qa', 'summarization'])",
        "1": "duplicate id '1' (first seen at row 1)",
        "6": "context is list, not text",
        "7": "instruction holds invalid text (undecodable bytes or characters)",
    }


def test_shipped_source_name_loads_the_excerpt():
    assert len(load_source(SHIPPED_EXCERPT)) == 37


def test_validation_of_arrow_strings_matches_python_objects():
    rows = [
        {"id": "1", "instruction": "Q?", "context": None, "response": "A.", "category": "open_qa"},
        {"id": "2", "instruction": " \u3000\x1c", "context": "c", "response": "A.", "category": "open_qa"},
        {"id": "1", "instruction": "Q?", "context": "", "response": "x" * 12, "category": "poetry"},
        {"id": None, "instruction": "Q?", "context": "", "response": "A.", "category": " "},
        {"id": "5", "instruction": "Q?", "context": "", "response": "A.", "category": "closed_qa"},
    ]
    as_objects = validate_records(pd.DataFrame(rows, dtype=object), max_field_characters=10)
    as_arrow = validate_records(pd.DataFrame(rows).astype("str").where(pd.DataFrame(rows).notna()), max_field_characters=10)
    for objects, arrow in zip(as_objects, as_arrow):
        assert objects.astype(object).fillna("null").to_dict("records") == arrow.astype(object).fillna("null").to_dict("records")
    valid, quarantine = as_arrow
    assert list(valid["id"]) == ["1", "5"] and list(valid["context"]) == ["", ""]
    assert quarantine["reason"].tolist() == [
        "instruction is empty",
        "response is 12 characters long, over the 10 limit (too long to review in Argilla); unknown category 'poetry' "
        "(expected one of ['brainstorming', 'classification', 'closed_qa', 'creative_writing', 'general_qa', "
        "'information_extraction', 'open_qa', 'summarization']); duplicate id '1' (first seen at row 1)",
        "category is empty; id is missing (null)",
    ]


def test_undecodable_context_beside_missing_ones_is_quarantined_not_a_crash():
    rows = [
        {"id": "1", "instruction": "Q?", "context": None, "response": "A.", "category": "open_qa"},
        {"id": "2", "instruction": "Q?", "context": "bad \ud800 text", "response": "A.", "category": "open_qa"},
    ]
    valid, quarantine = validate_records(pd.DataFrame(rows, dtype=object))
    assert list(valid["id"]) == ["1"]
    assert quarantine[["id", "context", "reason"]].to_dict("records") == [
        {"id": "2", "context": "bad \\ud800 text", "reason": "context holds invalid text (undecodable bytes or characters)"}
    ]
