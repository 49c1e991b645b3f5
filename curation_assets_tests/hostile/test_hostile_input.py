"""Hostile source files: each is a clear SourceError naming the file, or a quarantine with reasons; no valid row is lost."""

import json

import dagster as dg
import pytest

from curation_assets.defs.assets.source import build_raw_dolly
from curation_assets.defs.project import Project
from curation_assets.defs.source_loading import load_source
from curation_assets.logic.source import SourceError, defect_counts, validate_records
from curation_assets_tests.hostile.corpus import (
    BAD_ROW_POSITION,
    FILE_CASES,
    FORMATS,
    GOOD_IDS,
    MARKUP_TEXTS,
    ROW_DEFECTS,
    good_rows,
    hostile_text_rows,
    location_of,
    many_rows_with_one_bad,
    write,
)
from curation_assets_tests.markdown_render import render_markdown

ROW_CASES = [(defect, file_format) for defect in ROW_DEFECTS for file_format in defect.formats]


def utf8(rows: list[dict]) -> list[dict]:
    """Each value as the bytes a UTF-8 file holds: what "byte-identical" compares."""
    return [{key: value.encode("utf-8") for key, value in row.items()} for row in rows]


def load_and_validate(path, column_mapping=None):
    """Only a SourceError may escape: any other exception type is the bare traceback the user must never get."""
    try:
        return validate_records(load_source(str(path), column_mapping=column_mapping))
    except SourceError:
        raise
    except Exception as error:  # noqa: BLE001 - the point of the test
        pytest.fail(f"{path.name}: {type(error).__name__} escaped instead of a SourceError or a quarantine: {error}")


@pytest.mark.parametrize("defect, file_format", ROW_CASES, ids=[f"{d.name}-{f}" for d, f in ROW_CASES])
def test_a_bad_row_is_quarantined_at_its_location_and_every_good_row_kept(tmp_path, defect, file_format):
    rows = good_rows()
    bad = defect.mutate({**good_rows()[0], "id": "the-bad-row"})
    rows.insert(BAD_ROW_POSITION, bad)
    path = write(rows, tmp_path / f"source.{file_format}")

    valid, quarantine = load_and_validate(path)

    assert list(valid["id"]) == list(GOOD_IDS), "every good row kept, in order"
    assert utf8(valid.to_dict("records")) == utf8(good_rows()), "kept rows (non-ASCII, markup) are byte-identical"
    assert len(quarantine) == 1
    (quarantined,) = quarantine.to_dict("records")
    assert defect.reason in quarantined["reason"]
    assert quarantined["location"] == location_of(BAD_ROW_POSITION, file_format)
    assert quarantined["defects"], "machine-readable defect codes for the counts in the UI"
    json.dumps(quarantined, default=str).encode("utf-8")  # storable as is: undecodable text is escaped


@pytest.mark.parametrize("case", FILE_CASES, ids=[case.name for case in FILE_CASES])
def test_file_level_hostility(tmp_path, case):
    path = case.build(tmp_path)
    if case.error:
        with pytest.raises(SourceError) as raised:
            load_and_validate(path, case.column_mapping)
        message = str(raised.value)
        assert str(path) in message, "the error names the file"
        for fragment in case.error:
            assert fragment in message
        return
    valid, quarantine = load_and_validate(path, case.column_mapping)
    assert tuple(valid["id"]) == case.kept_ids
    reasons = dict(zip(quarantine["location"], quarantine["reason"]))
    assert set(reasons) == set(case.quarantined)
    for location, fragment in case.quarantined.items():
        assert fragment in reasons[location]


@pytest.mark.parametrize("file_format", FORMATS)
def test_non_ascii_markup_and_control_text_is_kept_byte_for_byte_in_every_format(tmp_path, file_format):
    rows = hostile_text_rows()
    valid, quarantine = load_and_validate(write(rows, tmp_path / f"hostile.{file_format}"))
    assert quarantine.empty, quarantine[["location", "reason"]].to_dict("records")
    assert utf8(valid.to_dict("records")) == utf8(rows)


def test_markup_is_text_not_a_defect_and_arrives_unchanged(tmp_path):
    (case,) = [case for case in FILE_CASES if case.name == "markup_everywhere"]
    valid, quarantine = load_and_validate(case.build(tmp_path))
    assert quarantine.empty
    assert list(valid["instruction"]) == MARKUP_TEXTS == list(valid["response"])


def test_one_bad_row_in_100k_quarantines_that_row_only(tmp_path):
    path = many_rows_with_one_bad(tmp_path / "big.jsonl", total=100_000, bad_position=54_321)
    valid, quarantine = load_and_validate(path)
    assert len(valid) == 99_999 and valid["id"].is_unique
    assert "54321" not in set(valid["id"])
    assert quarantine[["location", "id", "reason"]].to_dict("records") == [
        {"location": "line 54322", "id": "54321", "reason": "response is missing (null)"}
    ]
    assert defect_counts(quarantine) == {"response_missing": 1}


def materialize_raw_dolly(tmp_path, source):
    """raw_dolly of a project declaring this file as its source (no Argilla needed to load a source)."""
    project = Project.in_code("hostile", source={"file": str(source)}, output_dir=str(tmp_path / "output"))
    return dg.materialize([build_raw_dolly(project)], raise_on_error=False)


def test_raw_dolly_on_bad_rows_publishes_valid_rows_and_reports_the_quarantine(tmp_path):
    rows = good_rows()
    rows[1:1] = [{**rows[0], "id": "bad-null", "response": None}, {**rows[0], "id": "bad-cat", "category": "poetry"}]
    rows.append({**rows[0]})  # duplicate of r0
    source = write(rows, tmp_path / "source.jsonl")

    result = materialize_raw_dolly(tmp_path, source)

    assert result.success
    assert list(result.output_for_node("hostile__raw_dolly")["id"]) == list(GOOD_IDS)
    (materialization,) = result.asset_materializations_for_node("hostile__raw_dolly")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["rows_valid"] == len(GOOD_IDS) and metadata["rows_quarantined"] == 3
    assert metadata["quarantine_defects"] == {"response_missing": 1, "unknown_category": 1, "duplicate_id": 1}
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "no_quarantined_rows" and not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    shown = render_markdown(check.metadata["reasons"].value).cells
    assert "line 2" in shown and any("response is missing (null)" in cell for cell in shown), shown
    written = [
        json.loads(line)
        for line in (tmp_path / "output" / "quarantine" / "raw_dolly_quarantine.jsonl").read_text().splitlines()
    ]
    assert [(row["location"], row["id"]) for row in written] == [
        ("line 2", "bad-null"),
        ("line 3", "bad-cat"),
        ("line 9", "r0"),
    ]
    assert written[2]["reason"] == "duplicate id 'r0' (first seen at line 1)"


def test_raw_dolly_on_an_unreadable_file_fails_with_the_loaders_message(tmp_path):
    source = tmp_path / "cut.jsonl"
    source.write_text(json.dumps(good_rows()[0]) + "\n" + json.dumps(good_rows()[1])[:30])

    result = materialize_raw_dolly(tmp_path, source)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.error
    assert error.cls_name == "Failure", "a dagster Failure: the UI shows its description, not a stack to decode"
    assert f"{source} ends in the middle of a record at line 2" in error.message
    assert "Download or export it again" in error.message


def test_raw_dolly_with_no_valid_row_fails_with_a_reason_and_the_quarantine(tmp_path):
    rows = [{**row, "category": "trivia"} for row in good_rows()]
    source = write(rows, tmp_path / "source.jsonl")

    result = materialize_raw_dolly(tmp_path, source)

    assert not result.success
    (failure,) = [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.error
    assert error.cls_name == "Failure"
    assert f"all {len(rows)} row(s) failed validation, e.g. line 1: unknown category 'trivia'" in error.message
    quarantine_file = tmp_path / "output" / "quarantine" / "raw_dolly_quarantine.jsonl"
    assert str(quarantine_file) in error.message
    assert len(quarantine_file.read_text().splitlines()) == len(rows)
