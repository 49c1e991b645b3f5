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
from collections.abc import Callable

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
    columns = [
        frame[name] if name in frame.columns else pd.Series([""] * len(frame))
        for name in ("category", "instruction", "context", "response")
    ]
    return [
        hashlib.blake2b(
            json.dumps(
                ["" if _is_missing(value) else value for value in values], ensure_ascii=False, default=str
            ).encode("utf-8", "surrogatepass"),
            digest_size=8,
        ).hexdigest()
        for values in zip(*columns)
    ]


def parse_source(content: bytes, file_format: str, name: str) -> pd.DataFrame:
    """The rows of a file's content in one of LOCAL_FORMATS; `name` (the file) is what messages call it."""
    parse = {"jsonl": _parse_jsonl, "json": _parse_json_array, "parquet": _parse_parquet, "csv": _parse_csv}[
        file_format
    ]
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
            rows.append(
                _unparsed(
                    f"line {number}", f"line {number} is not valid JSON ({error.msg}, column {error.colno})", text
                )
            )
            continue
        if not isinstance(value, dict):
            rows.append(
                _unparsed(f"line {number}", f"line {number} is a JSON {type(value).__name__}, not an object", text)
            )
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
            rows.append(
                _unparsed(location, f"{location} is a JSON {type(item).__name__}, not an object", json.dumps(item))
            )
        elif not all(_encodes(key) for key in item):
            rows.append(_unparsed(location, f"{location} has a field name with undecodable bytes", repr(item)))
        else:
            rows.append({**item, "location": location})
    return pd.DataFrame(rows, dtype=object)


def _parse_parquet(content: bytes, path: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except (ValueError, OSError) as error:
        raise SourceError(
            f"cannot read {path} as parquet ({error}): the file looks truncated or corrupt. Export it again."
        ) from error
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

    Checked column by column: a text column of Arrow strings (a parquet source) holds only text or
    nulls, so its checks are vectorised; other columns (JSON and CSV sources hold any value) are
    checked value by value. Only the quarantined rows are copied to Python objects.
    """
    frame = frame.reset_index(drop=True)
    count = len(frame)
    locations = (
        frame["location"]
        if "location" in frame.columns
        else pd.Series([f"row {number}" for number in range(1, count + 1)])
    )
    unparsed = (
        np.array([isinstance(problem, str) for problem in frame["load_problem"].tolist()], dtype=bool)
        if "load_problem" in frame.columns
        else np.zeros(count, dtype=bool)
    )
    ids = _id_texts(frame["id"])
    contexts = _without_missing(frame["context"])

    # (defect code, rows with it, reason of row i), in the order a row's reasons are listed.
    checks: list[tuple[str, np.ndarray, Callable[[int], str]]] = []
    for column in ("instruction", "context", "response", "category"):
        checks += _text_checks(contexts if column == "context" else frame[column], column, max_field_characters)
    categories = frame["category"]
    if known_categories is not None:  # None: a dataset with task categories of its own, any is fine
        named = _text_rows(categories) & ~_blank_rows(categories)
        known = (
            categories.isin(list(known_categories)).to_numpy()
            if _is_arrow_text(categories)
            else np.array(
                [isinstance(value, str) and value in known_categories for value in categories.tolist()], dtype=bool
            )
        )
        checks.append(
            ("unknown_category", named & ~known,
             lambda row: f"unknown category {categories.iat[row]!r} (expected one of {sorted(known_categories)}; "
                         "a project with categories of its own sets `categories: any` under `source:`)")
        )  # fmt: skip
    checks += _id_checks(ids, locations, unparsed)

    problems = [(code, rows & ~unparsed, reason) for code, rows, reason in checks]
    bad = unparsed | np.logical_or.reduce([rows for _, rows, _ in problems]) if problems else unparsed
    bad_rows = np.flatnonzero(bad)
    found = {
        row: [("unparseable_line", frame["load_problem"].iat[row])]
        if unparsed[row]
        else [(code, reason(row)) for code, rows, reason in problems if rows[row]]
        for row in bad_rows.tolist()
    }
    quarantine = frame.iloc[bad_rows].astype(object)

    def objects(values) -> pd.Series:  # kept as Python objects: text with undecodable characters is no Arrow string
        return pd.Series(list(values), index=quarantine.index, dtype=object)

    quarantine["id"] = objects(
        value.text if isinstance(value, _NotAnId) else value for value in ids.iloc[bad_rows].astype(object).tolist()
    )
    quarantine["context"] = objects(contexts.iloc[bad_rows].tolist())
    quarantine["location"] = objects(locations.iloc[bad_rows].tolist())
    for column in ("load_problem", "raw_line"):
        if column not in quarantine.columns:
            quarantine[column] = None
    quarantine = quarantine.apply(lambda column: column.map(_storable))
    quarantine["reason"] = ["; ".join(reason for _, reason in found[row]) for row in bad_rows.tolist()]
    quarantine["defects"] = [[code for code, _ in found[row]] for row in bad_rows.tolist()]

    valid = frame[COLUMNS].assign(id=ids, context=contexts)
    if len(bad_rows):
        valid = valid[~bad]
    return valid.reset_index(drop=True), quarantine[QUARANTINE_COLUMNS].reset_index(drop=True)


def _is_arrow_text(column: pd.Series) -> bool:
    """Arrow-backed strings (what a parquet source gives): every value is valid text or null."""
    return isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow"


def _without_missing(context: pd.Series) -> pd.Series:
    """The context with missing values as "" (an absent optional input)."""
    if _is_arrow_text(context):
        return context.fillna("")
    return pd.Series(["" if _is_missing(value) else value for value in context.tolist()], dtype=object)


def _text_rows(column: pd.Series) -> np.ndarray:
    if _is_arrow_text(column):
        return column.notna().to_numpy()
    return np.array([isinstance(value, str) for value in column.tolist()], dtype=bool)


# Characters str.strip() removes. A text is blank when it has none other; only texts that start with one can be.
_PYTHON_WHITESPACE = [chr(code) for code in range(0x110000) if chr(code).isspace()]


def _blank_rows(column: pd.Series) -> np.ndarray:
    """Texts that are empty or whitespace only (str.strip() leaves nothing); False for non-text values."""
    if _is_arrow_text(column):
        first = column.str.slice(0, 1)
        candidates = np.flatnonzero(((first == "") | first.isin(_PYTHON_WHITESPACE)).fillna(False).to_numpy())
        blank = np.zeros(len(column), dtype=bool)
        blank[candidates] = [not value.strip() for value in column.iloc[candidates].tolist()]
        return blank
    return np.array([isinstance(value, str) and not value.strip() for value in column.tolist()], dtype=bool)


def _text_checks(
    column: pd.Series, name: str, max_field_characters: int
) -> list[tuple[str, np.ndarray, Callable[[int], str]]]:
    """The checks of one text column: too long, invalid text, empty (not for the optional context), missing, not text."""
    if _is_arrow_text(column):
        is_text = column.notna().to_numpy()
        too_long = (column.str.len().fillna(0) > max_field_characters).to_numpy()
        invalid = np.zeros(len(column), dtype=bool)  # Arrow holds valid UTF-8 only
        not_text = np.zeros(len(column), dtype=bool)
    else:
        values = column.tolist()
        is_text = np.array([isinstance(value, str) for value in values], dtype=bool)
        too_long = np.array(
            [isinstance(value, str) and len(value) > max_field_characters for value in values], dtype=bool
        )
        invalid = np.array(
            [isinstance(value, str) and not (value.isascii() or _encodes(value)) for value in values], dtype=bool
        )
        not_text = np.array([not isinstance(value, str) and not _is_missing(value) for value in values], dtype=bool)
    checks = [
        (f"{name}_too_long", too_long,
         lambda row: f"{name} is {len(column.iat[row]):,} characters long, over the {max_field_characters:,} limit (too long to review in Argilla)"),
        (f"{name}_invalid_utf8", invalid, lambda row: f"{name} holds invalid text (undecodable bytes or characters)"),
    ]  # fmt: skip
    if name != "context":
        checks.append((f"{name}_empty", _blank_rows(column), lambda row: f"{name} is empty"))
    checks += [
        (f"{name}_missing", ~is_text & ~not_text, lambda row: f"{name} is missing (null)"),
        (f"{name}_not_text", not_text, lambda row: f"{name} is {_kind(column.iat[row])}, not text"),
    ]
    return checks


def _id_texts(column: pd.Series) -> pd.Series:
    """Ids as text (see _id_text): Arrow strings as they are, whole-number columns converted at once."""
    if _is_arrow_text(column):
        return column
    if column.dtype.kind in "iu":
        return column.astype(str)
    return pd.Series([_id_text(value) for value in column.tolist()], dtype=object)


def _id_checks(
    ids: pd.Series, locations: pd.Series, unparsed: np.ndarray
) -> list[tuple[str, np.ndarray, Callable[[int], str]]]:
    """Id not text, missing, empty or seen before. The first row with an id claims it, whatever else is wrong with it."""
    values = ids.tolist()
    not_an_id = np.array([isinstance(value, _NotAnId) for value in values], dtype=bool)
    missing = np.array([not isinstance(value, (str, _NotAnId)) and _is_missing(value) for value in values], dtype=bool)
    empty = np.array([isinstance(value, str) and not value.strip() for value in values], dtype=bool)
    claiming = np.flatnonzero(~(not_an_id | missing | empty | unparsed))
    claimed = pd.Series(values, dtype=object).iloc[claiming]
    repeated = claimed.duplicated(keep="first").to_numpy()
    duplicate = np.zeros(len(values), dtype=bool)
    duplicate[claiming[repeated]] = True
    repeated_ids = set(claimed[repeated])
    first_location = {
        record_id: locations.iat[row]
        for row, record_id, again in zip(claiming.tolist(), claimed.tolist(), repeated.tolist())
        if not again and record_id in repeated_ids
    }
    return [
        ("id_not_text", not_an_id, lambda row: f"id is {values[row].kind}, not text or a whole number"),
        ("id_missing", missing, lambda row: "id is missing (null)"),
        ("id_empty", empty, lambda row: "id is empty"),
        (
            "duplicate_id",
            duplicate,
            lambda row: f"duplicate id {values[row]!r} (first seen at {first_location[values[row]]})",
        ),
    ]


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
