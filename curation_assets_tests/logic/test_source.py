"""Loading and validation: clear errors, quarantine with reasons, no valid row lost."""

import json
import os

import pandas as pd
import pytest

from curation_assets.defs.source_loading import load_shipped_dolly_excerpt, load_source
from curation_assets.logic.source import SHIPPED_EXCERPT, SourceError, validate_records


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
    ids = set()
    for name in ("d.parquet", "d.csv", "d.jsonl"):
        frame = load_source(str(tmp_path / name), column_mapping=mapping)
        valid, quarantine = validate_records(frame)
        assert list(valid["instruction"]) == ["Q?"] and list(valid["context"]) == [""], name
        ids |= set(valid["id"])
    assert len(ids) == 1 and len(ids.pop()) == 16, (
        "without an id column, the same record gets the same derived id in every format"
    )


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_derived_ids_follow_the_content_not_the_position(tmp_path):
    rows = [{"instruction": f"Q{i}?", "response": f"A{i}.", "category": "open_qa"} for i in range(5)]
    first = load_source(write_jsonl(tmp_path / "a.jsonl", rows))
    reordered = load_source(
        write_jsonl(
            tmp_path / "b.jsonl", rows[::-1] + [{"instruction": "New?", "response": "N.", "category": "open_qa"}]
        )
    )
    by_text = lambda frame: dict(zip(frame["instruction"], frame["id"]))  # noqa: E731
    assert {text: by_text(reordered)[text] for text in by_text(first)} == by_text(first), (
        "reordered or extended: same ids"
    )
    assert first.attrs["ids_derived"] and first["id"].is_unique

    # Two sources with records at the same positions never share an id (the bug: both were numbered 0, 1, ...).
    other = load_source(
        write_jsonl(tmp_path / "c.jsonl", [{**row, "response": row["response"] + " (other)"} for row in rows])
    )
    assert not set(first["id"]) & set(other["id"])

    # An identical copy gets the same id, so the later one is quarantined as a duplicate, not pushed twice.
    copied = load_source(write_jsonl(tmp_path / "d.jsonl", [rows[0], rows[1], rows[0]]))
    valid, quarantine = validate_records(copied)
    assert len(valid) == 2 and quarantine["defects"].tolist() == [["duplicate_id"]]


def test_the_id_column_can_be_named_or_derived_even_when_an_id_column_exists(tmp_path):
    rows = [
        {"uid": f"u{i}", "id": i, "instruction": f"Q{i}?", "response": "A.", "category": "open_qa"} for i in range(3)
    ]
    path = write_jsonl(tmp_path / "ids.jsonl", rows)
    assert list(load_source(path)["id"]) == [0, 1, 2], "auto: the column named id"
    assert list(load_source(path, id_column="uid")["id"]) == ["u0", "u1", "u2"]
    derived = load_source(path, id_column="derive")
    assert derived.attrs["ids_derived"] and derived["id"].str.len().eq(16).all()
    with pytest.raises(SourceError, match=r"no id column 'record_id'.*'derive'"):
        load_source(path, id_column="record_id")


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
    with pytest.raises(
        SourceError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        load_source(str(path))


def test_missing_file_and_unreachable_hub_name_the_source(tmp_path, monkeypatch):
    import datasets

    with pytest.raises(SourceError, match="does not exist"):
        load_source(str(tmp_path / "nope.parquet"))
    # The Hub cannot be reached from here: offline mode fails at once instead of after the network's timeouts.
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceError, match="argilla/databricks-dolly-15k-curated-multilingual.*local .jsonl"):
        load_source("argilla/databricks-dolly-15k-curated-multilingual", split="en")


def test_paths_that_are_not_data_files_are_refused_without_echoing_content(tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY----- do-not-echo\n")
    folder = tmp_path / "exports.jsonl"
    folder.mkdir()
    pipe = tmp_path / "stream.jsonl"
    os.mkfifo(pipe)
    link_to_secret = tmp_path / "data.jsonl"
    link_to_secret.symlink_to(secret)
    link_to_device = tmp_path / "zeros.csv"
    link_to_device.symlink_to("/dev/zero")
    dangling = tmp_path / "gone.parquet"
    dangling.symlink_to(tmp_path / "moved.parquet")
    cases = {
        folder: "is a directory",
        pipe: "not a regular file",
        link_to_secret: "is a link to .*id_rsa, which is not a .jsonl file",
        link_to_device: "is a link to /dev/zero, which is not a .csv file",
        dangling: "which does not exist",
    }
    for path, message in cases.items():
        with pytest.raises(SourceError, match=message) as refused:
            load_source(str(path))
        assert "do-not-echo" not in str(refused.value) and "BEGIN" not in str(refused.value)


def test_the_hub_loader_reads_a_dataset_repository_as_the_hub_serves_it(tmp_path, monkeypatch):
    """The Hub branch's real code, `datasets.load_dataset(id, split=...)`, on a dataset repository laid out as on the
    Hub (a data file per split) but on disk: the Hub itself is out of reach here."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    repository = tmp_path / "databricks-dolly-15k-curated-multilingual"
    (repository / "data").mkdir(parents=True)
    excerpt = load_shipped_dolly_excerpt()
    excerpt.to_parquet(repository / "data" / "en-00000-of-00001.parquet", index=False)
    excerpt.head(3).to_parquet(repository / "data" / "de-00000-of-00001.parquet", index=False)
    english = load_source(str(repository), split="en", kind="hub")
    assert len(english) == 37 and list(english["id"][:3]) == ["0", "1", "2"]
    assert len(load_source(str(repository), split="de", kind="hub")) == 3
    with pytest.raises(SourceError, match=r"split 'fr'"):
        load_source(str(repository), split="fr", kind="hub")


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
        "'creative_writing', 'general_qa', 'information_extraction', 'open_qa', 'summarization']; "
        "a project with categories of its own sets `categories: any` under `source:`)",
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
    as_arrow = validate_records(
        pd.DataFrame(rows).astype("str").where(pd.DataFrame(rows).notna()), max_field_characters=10
    )
    for objects, arrow in zip(as_objects, as_arrow):
        assert objects.astype(object).fillna("null").to_dict("records") == arrow.astype(object).fillna("null").to_dict(
            "records"
        )
    valid, quarantine = as_arrow
    assert list(valid["id"]) == ["1", "5"] and list(valid["context"]) == ["", ""]
    assert quarantine["reason"].tolist() == [
        "instruction is empty",
        "response is 12 characters long, over the 10 limit (too long to review in Argilla); unknown category 'poetry' "
        "(expected one of ['brainstorming', 'classification', 'closed_qa', 'creative_writing', 'general_qa', "
        "'information_extraction', 'open_qa', 'summarization']; a project with categories of its own sets "
        "`categories: any` under `source:`); duplicate id '1' (first seen at row 1)",
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
        {
            "id": "2",
            "context": "bad \\ud800 text",
            "reason": "context holds invalid text (undecodable bytes or characters)",
        }
    ]


def test_a_project_with_categories_of_its_own_accepts_them():
    rows = [{"id": "1", "instruction": "Q?", "context": "", "response": "A.", "category": "support_ticket"}]
    assert validate_records(pd.DataFrame(rows))[1]["defects"].tolist() == [["unknown_category"]]
    valid, quarantine = validate_records(pd.DataFrame(rows), known_categories=None)
    assert list(valid["category"]) == ["support_ticket"] and quarantine.empty
