"""Where the pipeline writes what people open: charts, the curated dataset, quarantined rows."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

OUTPUT_DIR_ENV = "CURATION_OUTPUT_DIR"


def default_output_dir() -> str:
    return os.environ.get(OUTPUT_DIR_ENV, str(Path.cwd() / "curation_output"))


class CurationOutputs(dg.ConfigurableResource):
    """A folder for the files the pipeline publishes (not Dagster's own pickled intermediates)."""

    output_dir: str | None = Field(
        default=None, description=f"Folder for published files (default: ${OUTPUT_DIR_ENV}, else ./curation_output)"
    )

    @property
    def root(self) -> Path:
        # Resolved when a run writes, not when the definitions are imported: a process that sets
        # CURATION_OUTPUT_DIR after importing them (the quickstart, a test) still writes there.
        return Path(self.output_dir or default_output_dir())

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def kept_answers_path(outputs: CurationOutputs) -> Path:
    """Every finished answer last collected: the copy that outlives a deleted Argilla account."""
    return outputs.folder("feedback") / "finished_answers.parquet"


def read_kept_answers(outputs: CurationOutputs, columns: list[str]) -> pd.DataFrame:
    path = kept_answers_path(outputs)
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=columns)
