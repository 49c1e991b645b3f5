"""Reading a project's source: the shipped excerpt, a local file, or a Hugging Face Hub dataset.

The I/O side of `raw_dolly`; what the bytes mean (rows, columns, ids, quarantine) is
`logic/source.py`'s. A path must name a regular file in one of the data formats: a directory,
a device, or a link to a file of another kind is refused without reading (and so without echoing)
any of it.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pandas as pd

from ..logic.source import LOCAL_FORMATS, SHIPPED_EXCERPT, SourceError, canonical_columns, parse_source

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def load_shipped_dolly_excerpt() -> pd.DataFrame:
    """The 37 real Dolly records shipped with the package, with their original line ids."""
    frame = pd.read_json(DATA_DIR / "databricks-dolly-15k-sample.jsonl", lines=True, dtype=False)
    lines = (DATA_DIR / "databricks-dolly-15k-sample.ids.txt").read_text().splitlines()
    ids = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    frame.insert(0, "id", ids)
    return frame


def load_source(
    source: str,
    split: str = "train",
    column_mapping: dict[str, str] | None = None,
    id_column: str = "auto",
    kind: str | None = None,
) -> pd.DataFrame:
    """Rows of a Hub dataset, a local jsonl/json/parquet/csv file, or the shipped excerpt, in the canonical columns.

    `kind` is "shipped", "file" or "hub" as a project declares it; None guesses from `source`
    (the shipped excerpt's name, a path with a data file's suffix or that exists, else a Hub id).
    Besides the canonical columns the frame has `location` (where each row is in the source) and,
    for lines that could not be parsed, `load_problem` and `raw_line`; `validate_records` turns
    those into quarantined rows. `id_column`: see `logic.source.canonical_columns`.
    """
    kind = kind or _guess_kind(source)
    if kind == "shipped":
        frame = load_shipped_dolly_excerpt()
    elif kind == "file":
        path = Path(source)
        frame = parse_source(read_data_file(path), LOCAL_FORMATS.get(path.suffix.lower(), ""), str(path))
    else:
        frame = _load_hub(source, split)
    return canonical_columns(frame.rename(columns=column_mapping or {}), source, id_column)


def _guess_kind(source: str) -> str:
    if source == SHIPPED_EXCERPT:
        return "shipped"
    if Path(source).suffix.lower() in LOCAL_FORMATS or Path(source).exists():
        return "file"
    return "hub"


def read_data_file(path: Path) -> bytes:
    """The bytes of a data file, after checking it is one: a clear SourceError otherwise, quoting none of its content."""
    where = "check `file:` under `source:` in the project's defs.yaml"
    if not path.exists() and not path.is_symlink():
        raise SourceError(f"source file {path} does not exist: {where}")
    if path.suffix.lower() not in LOCAL_FORMATS:
        raise SourceError(f"cannot read {path}: use a .jsonl, .json, .parquet or .csv file")
    target = path.resolve()
    if path.is_symlink() and target.suffix.lower() != path.suffix.lower():
        raise SourceError(
            f"{path} is a link to {target}, which is not a {path.suffix} file: point `file:` at the data file itself"
        )
    if not target.exists():
        raise SourceError(f"{path} is a link to {target}, which does not exist: {where}")
    mode = target.stat().st_mode
    if stat.S_ISDIR(mode):
        raise SourceError(f"{path} is a directory, not a {path.suffix} file: {where}")
    if not stat.S_ISREG(mode):
        raise SourceError(f"{path} is not a regular file (a device, pipe or socket): {where}")
    if target.stat().st_size == 0:
        raise SourceError(
            f"source file {path} is empty (0 bytes): export the dataset again, or point `source` at another file"
        )
    return target.read_bytes()


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
