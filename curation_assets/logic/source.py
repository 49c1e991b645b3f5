"""A source's content into the canonical frame, and bad rows into a quarantine: pure, given the file's bytes.

Hostile files are expected: every row keeps where it came from (`location`, e.g. "line 12"), a line
that cannot be parsed becomes a quarantined row instead of failing the whole file, and only a file
that cannot be read at all (empty, truncated, not the format its name says) is an error. Reading
the file, the Hub and the shipped excerpt is `defs/source_loading.py`'s job.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import sys

import numpy as np
import pandas as pd

SHIPPED_EXCERPT = "shipped:dolly-excerpt"
COLUMNS = ["id", "instruction", "context", "response", "category"]
REQUIRED_COLUMNS = ("instruction", "response", "category")
QUARANTINE_COLUMNS = ["location", *COLUMNS, "raw_line", "reason", "defects"]
DOLLY_CATEGORIES = frozenset(
    {
        "open_qa",
        "general_qa",
        "classification",
        "closed_qa",
        "brainstorming",
        "information_extraction",
        "summarization",
        "creative_writing",
    }
)
# Tens of pages of text: far beyond what an annotator can review in Argilla's UI, so a field this
# long is a data accident (a whole document pasted into one cell), not an instruction or a response.
MAX_FIELD_CHARACTERS = 100_000
# A CSV field may be as long as a record can be; the csv module's default cap (128 KiB) would fail the file.
csv.field_size_limit(sys.maxsize)
LOCAL_FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class SourceError(ValueError):
    """The source cannot be loaded; the message says which source, where, and what to do."""


def content_ids(frame: pd.DataFrame) -> list[str]:
    """An id per row from what it says, never from where it sits: the same record gets the same id in any
    file, in any order. The first 16 hex digits of BLAKE2b over the JSON list [category, instruction,
    context, response] (an absent context counts as ""), so identical records share an id (and the
    later copy is quarantined as a duplicate) and two different records collide with odds of 2^-64.
    """
    columns = [frame[name] if name in frame.columns else pd.Series([""] * len(frame)) for name in ("category", "instruction", "context", "response")]
    return [
        hashlib.blake2b(
            json.dumps(["" if _is_missing(value) else value for value in values], ensure_ascii=False, default=str).encode(
                "utf-8", "surrogatepass"
            ),
            digest_size=8,
        ).hexdigest()
        for values in zip(*columns)
    ]


def parse_source(content: bytes, file_format: str, name: str) -> pd.DataFrame:
    """The rows of a file's content in one of LOCAL_FORMATS; `name` (the file) is what messages call it."""
    parse = {"jsonl": _parse_jsonl, "json": _parse_json_array, "parquet": _parse_parquet, "csv": _parse_csv}[file_format]
    return parse(content, name)


def _parse_jsonl(content: bytes, path: str) -> pd.DataFrame:
    """One row per non-blank line; a line that is not a JSON object becomes a row with its problem."""
    content = content.removeprefix(codecs.BOM_UTF8)
    lines = content.split(b"\n")
    rows, parsed = [], 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        text = _decode(raw).rstrip("\r")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            if parsed and number == len(lines) and not content.endswith(b"\n"):
                raise SourceError(
                    f"{path} ends in the middle of a record at line {number} ({error.msg}, column {error.colno}): "
                    "the file looks truncated or corrupt. Download or export it again."
                ) from error
            rows.append(_unparsed(f"line {number}", f"line {number} is not valid JSON ({error.msg}, column {error.colno})", text))
            continue
        if not isinstance(value, dict):
            rows.append(_unparsed(f"line {number}", f"line {number} is a JSON {type(value).__name__}, not an object", text))
            continue
        if not all(_encodes(key) for key in value):
            rows.append(_unparsed(f"line {number}", f"line {number} has a field name with undecodable bytes", text))
            continue
        rows.append({**value, "location": f"line {number}"})
        parsed += 1
    if not parsed:
        raise SourceError(
            f"no line of {path} is a JSON object ({len(rows)} non-blank line(s)): is it really JSON Lines, one record per line?"
        )
    return pd.DataFrame(rows, dtype=object)


def _unparsed(location: str, problem: str, raw_line: str) -> dict:
    return {"location": location, "load_problem": problem, "raw_line": raw_line}


def _parse_json_array(content: bytes, path: str) -> pd.DataFrame:
    text = _decode(content)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"cannot read {path} as JSON: {error.msg} at line {error.lineno}, column {error.colno}. "
            "Is the file truncated or corrupt? (For one record per line, name it .jsonl.)"
        ) from error
    if not isinstance(value, list):
        raise SourceError(f"{path} holds a JSON {type(value).__name__}; expected an array of records ([{{...}}, ...])")
    rows = []
    for number, item in enumerate(value, start=1):
        location = f"item {number}"
        if not isinstance(item, dict):
            rows.append(_unparsed(location, f"{location} is a JSON {type(item).__name__}, not an object", json.dumps(item)))
        elif not all(_encodes(key) for key in item):
            rows.append(_unparsed(location, f"{location} has a field name with undecodable bytes", repr(item)))
        else:
            rows.append({**item, "location": location})
    return pd.DataFrame(rows, dtype=object)


def _parse_parquet(content: bytes, path: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except (ValueError, OSError) as error:
        raise SourceError(f"cannot read {path} as parquet ({error}): the file looks truncated or corrupt. Export it again.") from error
    frame["location"] = [f"row {number}" for number in range(1, len(frame) + 1)]
    return frame


def _parse_csv(content: bytes, path: str) -> pd.DataFrame:
    """One row per record under the header; a record with the wrong number of fields becomes a row with its problem."""
    text = _decode(content)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
        if not all(_encodes(name) for name in header):
            raise SourceError(f"the header of {path} holds undecodable bytes: is it really a UTF-8 CSV file?")
        rows, end_of_previous = [], reader.line_num
        for record in reader:
            location, end_of_previous = f"line {end_of_previous + 1}", reader.line_num
            if not record:
                continue
            if len(record) != len(header):
                problem = f"{location} has {len(record)} field(s), the header has {len(header)} (unquoted comma or line break?)"
                rows.append(_unparsed(location, problem, ",".join(record)))
                continue
            rows.append({**dict(zip(header, record)), "location": location})
    except csv.Error as error:
        raise SourceError(
            f"cannot read {path} as CSV at line {reader.line_num}: {error}. Is the file truncated or corrupt?"
        ) from error
    return pd.DataFrame(rows, columns=[*header, "location", "load_problem", "raw_line"], dtype=object)


def _decode(content: bytes) -> str:
    """Text of a file; undecodable bytes survive as surrogates, so validation can name the row and field they sit in."""
    return content.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")


def canonical_columns(frame: pd.DataFrame, source: str, id_column: str = "auto") -> pd.DataFrame:
    """The canonical columns (location, id, instruction, context, response, category, load_problem, raw_line).

    `id_column` names the column holding each record's id; "derive" derives ids from the
    content (`content_ids`); "auto" takes the column `id` when there is one, else derives.
    """
    found = [column for column in frame.columns if column not in ("location", "load_problem", "raw_line")]
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise SourceError(
            f"{source}: missing column(s) {missing}; found {found}. Map your names with `column_mapping` under "
            "`source:` in the project's defs.yaml, e.g. {prompt: instruction, answer: response, task: category} "
            "(or curation-quickstart --column-mapping prompt=instruction,answer=response,task=category)."
        )
    if frame.empty:
        raise SourceError(f"{source} has the columns {found} but no records: export the dataset again")
    frame = frame.copy()
    if id_column not in ("auto", "derive"):
        if id_column not in frame.columns:
            raise SourceError(
                f"{source}: no id column {id_column!r}; found {found}. Set `id_column` to one of them, "
                "or to 'derive' to derive ids from each record's content."
            )
        frame = frame.drop(columns=[column for column in ("id",) if column != id_column and column in frame.columns])
        frame = frame.rename(columns={id_column: "id"})
    ids_derived = id_column == "derive" or (id_column == "auto" and "id" not in frame.columns)
    if ids_derived:
        # Never the row's position: a reordered or extended file would give other records the same ids.
        frame["id"] = content_ids(frame)
        if "load_problem" in frame.columns:
            # A line that could not be parsed has no content to derive from; it is quarantined as it is.
            frame.loc[frame["load_problem"].notna(), "id"] = None
    if "context" not in frame.columns:
        frame["context"] = ""
    if "location" not in frame.columns:
        frame["location"] = [f"row {number}" for number in range(1, len(frame) + 1)]
    for extra in ("load_problem", "raw_line"):
        if extra not in frame.columns:
            frame[extra] = None
    canonical = frame[["location", *COLUMNS, "load_problem", "raw_line"]].reset_index(drop=True)
    canonical.attrs["ids_derived"] = ids_derived
    return canonical


def validate_records(
    frame: pd.DataFrame, known_categories=DOLLY_CATEGORIES, max_field_characters: int = MAX_FIELD_CHARACTERS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into valid ones and a quarantine with a human-readable `reason`; no valid row is dropped.

    `known_categories` None accepts any category (a dataset with task categories of its own).

    The quarantine keeps each row's values (undecodable characters escaped so any file can hold
    them), its `location` in the source, the `reason` and machine-readable `defects` codes.
    """
    frame = frame.reset_index(drop=True).astype(object)
    if "location" not in frame.columns:
        frame["location"] = [f"row {number}" for number in range(1, len(frame) + 1)]
    for column in ("load_problem", "raw_line"):
        if column not in frame.columns:
            frame[column] = None
    frame["id"] = frame["id"].map(_id_text)
    frame["context"] = frame["context"].map(lambda value: "" if _is_missing(value) else value)

    first_location: dict[str, str] = {}
    rows = zip(frame["location"], frame["load_problem"], *(frame[column] for column in COLUMNS))
    problems = [
        _row_problems(location, load_problem, dict(zip(COLUMNS, values)), known_categories, max_field_characters, first_location)
        for location, load_problem, *values in rows
    ]
    bad = np.array([bool(found) for found in problems], dtype=bool)
    quarantine = frame[bad].copy()
    quarantine["id"] = quarantine["id"].map(lambda value: value.text if isinstance(value, _NotAnId) else value)
    quarantine = quarantine.apply(lambda column: column.map(_storable))
    found = [found for found in problems if found]
    quarantine["reason"] = ["; ".join(reason for _, reason in row) for row in found]
    quarantine["defects"] = [[code for code, _ in row] for row in found]
    valid = frame.loc[~bad, COLUMNS]
    return valid.reset_index(drop=True), quarantine[QUARANTINE_COLUMNS].reset_index(drop=True)


def _row_problems(location, load_problem, row: dict, known_categories, max_field_characters: int, first_location: dict) -> list:
    """(defect code, reason) pairs of one row; empty for a valid row. Records the first location of each id."""
    if isinstance(load_problem, str):
        return [("unparseable_line", load_problem)]
    problems = []
    for column in ("instruction", "context", "response", "category"):
        value = row[column]
        if isinstance(value, str):
            if len(value) > max_field_characters:
                problems.append((f"{column}_too_long", f"{column} is {len(value):,} characters long, over the "
                                 f"{max_field_characters:,} limit (too long to review in Argilla)"))  # fmt: skip
            if not _encodes(value):
                problems.append((f"{column}_invalid_utf8", f"{column} holds invalid text (undecodable bytes or characters)"))
            if column != "context" and not value.strip():
                problems.append((f"{column}_empty", f"{column} is empty"))
        elif _is_missing(value):
            problems.append((f"{column}_missing", f"{column} is missing (null)"))
        else:
            problems.append((f"{column}_not_text", f"{column} is {_kind(value)}, not text"))
    category = row["category"]
    if isinstance(category, str) and category.strip() and known_categories is not None and category not in known_categories:
        problems.append((
            "unknown_category",
            f"unknown category {category!r} (expected one of {sorted(known_categories)}; "
            "a project with categories of its own sets `categories: any` under `source:`)",
        ))  # fmt: skip
    record_id = row["id"]
    if isinstance(record_id, _NotAnId):
        problems.append(("id_not_text", f"id is {record_id.kind}, not text or a whole number"))
    elif _is_missing(record_id):
        problems.append(("id_missing", "id is missing (null)"))
    elif not record_id.strip():
        problems.append(("id_empty", "id is empty"))
    elif record_id in first_location:
        problems.append(("duplicate_id", f"duplicate id {record_id!r} (first seen at {first_location[record_id]})"))
    else:
        first_location[record_id] = location
    return problems


def defect_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """How many quarantined rows have each defect, most frequent first."""
    if quarantine.empty:
        return {}
    return quarantine["defects"].explode().value_counts().to_dict()


class _NotAnId:
    """An id value that is neither text nor a whole number (a list, a dict, a bool, 1.5, ...)."""

    def __init__(self, value):
        self.kind = _kind(value)
        self.text = repr(value)


def _id_text(value):
    """Ids as text: "7" and 7 are the same record; 7.0 (a number column with gaps) is 7 too."""
    if isinstance(value, str) or _is_missing(value):
        return value
    if isinstance(value, (bool, np.bool_)):
        return _NotAnId(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return _NotAnId(value)


def _kind(value) -> str:
    """The type of a value in the words of the data formats: int, float, bool, list, dict."""
    if isinstance(value, np.ndarray):
        return "list"
    if isinstance(value, np.generic):
        value = value.item()
    return type(value).__name__


def _is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _storable(value):
    """Quarantined values as they can be written to any file: undecodable characters escaped."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
