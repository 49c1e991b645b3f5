"""Load an instruction dataset (Hub id or local file) into the canonical frame, and quarantine bad rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SHIPPED_EXCERPT = "shipped:dolly-excerpt"
HUB_DEFAULT = "argilla/databricks-dolly-15k-curated-multilingual"
COLUMNS = ["id", "instruction", "context", "response", "category"]
REQUIRED_TEXT = ("instruction", "response")
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
LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


class SourceError(ValueError):
    """The source cannot be loaded; the message says which source and what to do."""


def load_shipped_dolly_excerpt() -> pd.DataFrame:
    """The 37 real Dolly records shipped with the package, with their original line ids."""
    frame = pd.read_json(DATA_DIR / "databricks-dolly-15k-sample.jsonl", lines=True, dtype=False)
    lines = (DATA_DIR / "databricks-dolly-15k-sample.ids.txt").read_text().splitlines()
    ids = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    frame.insert(0, "id", ids)
    return frame


def load_source(source: str, split: str = "en", column_mapping: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows of a Hub dataset, a local jsonl/json/parquet/csv file, or the shipped excerpt, with mapped column names."""
    if source == SHIPPED_EXCERPT:
        frame = load_shipped_dolly_excerpt()
    elif Path(source).suffix.lower() in LOCAL_FORMATS or Path(source).exists():
        frame = _load_local(Path(source))
    else:
        frame = _load_hub(source, split)
    frame = frame.rename(columns=column_mapping or {})
    return _canonical_columns(frame, source)


def _load_local(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SourceError(f"source file {path} does not exist")
    if path.stat().st_size == 0:
        raise SourceError(f"source file {path} is empty")
    builder = LOCAL_FORMATS.get(path.suffix.lower())
    if builder is None:
        raise SourceError(f"cannot read {path}: use a .jsonl, .json, .parquet or .csv file")
    try:
        if builder == "json":
            return pd.read_json(path, lines=path.suffix.lower() == ".jsonl", dtype=False)
        if builder == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise SourceError(f"cannot read {path} as {builder}: {error}. Is the file truncated or corrupt?") from error


def _load_hub(dataset_id: str, split: str) -> pd.DataFrame:
    import datasets

    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except Exception as error:  # datasets raises many types (connection, offline mode, not found)
        raise SourceError(
            f"cannot load Hugging Face dataset {dataset_id!r} (split {split!r}): {type(error).__name__}: {error}. "
            f"Check the id and your network, or give a local .jsonl/.parquet/.csv path, or {SHIPPED_EXCERPT!r}."
        ) from error
    return dataset.to_pandas()


def _canonical_columns(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [column for column in ("instruction", "response") if column not in frame.columns]
    if missing:
        raise SourceError(
            f"{source}: missing column(s) {missing}; found {list(frame.columns)}. "
            "Map your names with column_mapping, e.g. {'prompt': 'instruction', 'answer': 'response'}."
        )
    frame = frame.copy()
    if "id" not in frame.columns:
        # Without ids, the row position is the id, as in Dolly's own line numbering.
        frame["id"] = range(len(frame))
    for optional in ("context", "category"):
        if optional not in frame.columns:
            frame[optional] = ""
    return frame[COLUMNS].reset_index(drop=True)


def validate_records(frame: pd.DataFrame, known_categories=DOLLY_CATEGORIES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split rows into valid ones and a quarantine with a human-readable `reason`; no valid row is dropped."""
    frame = frame.copy()
    frame["id"] = frame["id"].map(lambda value: value if _is_missing(value) else str(value))
    frame["context"] = frame["context"].map(lambda value: "" if _is_missing(value) else value)
    reasons = pd.Series([[] for _ in range(len(frame))], index=frame.index)

    def flag(mask: pd.Series, reason) -> None:
        for index in frame.index[mask]:
            reasons[index].append(reason(index) if callable(reason) else reason)

    for column in ("instruction", "context", "response", "category"):
        not_text = ~frame[column].map(lambda value: isinstance(value, str) or (_is_missing(value) and column == "category"))
        flag(not_text, lambda index, column=column: f"{column} is {type(frame.at[index, column]).__name__}, not text")
        bad_text = frame[column].map(lambda value: isinstance(value, str) and not _encodes(value))
        flag(bad_text, f"{column} holds invalid text (undecodable characters)")
    for column in REQUIRED_TEXT:
        empty = frame[column].map(lambda value: _is_missing(value) or (isinstance(value, str) and not value.strip()))
        flag(empty, f"{column} is empty")
    flag(frame["id"].map(_is_missing), "id is missing")
    category_known = frame["category"].map(lambda value: isinstance(value, str) and value in known_categories)
    flag(~category_known & frame["category"].map(lambda value: isinstance(value, str)),
         lambda index: f"unknown category {frame.at[index, 'category']!r}")  # fmt: skip
    flag(frame["category"].map(_is_missing), "category is missing")
    duplicate = frame["id"].duplicated(keep="first") & ~frame["id"].map(_is_missing)
    flag(duplicate, lambda index: f"duplicate id {frame.at[index, 'id']!r} (first occurrence kept)")

    bad = reasons.map(bool)
    quarantine = frame[bad].astype(object).apply(lambda column: column.map(_storable))
    quarantine["reason"] = reasons[bad].map("; ".join)
    return frame[~bad].reset_index(drop=True), quarantine.reset_index(drop=True)


def _is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _storable(value):
    """Quarantined values as they can be written to any file: undecodable characters escaped."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else value


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
