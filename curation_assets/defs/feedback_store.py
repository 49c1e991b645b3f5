"""The project's own copy of every finished answer: what outlives an Argilla account deleted with its answers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .project import Project


def kept_answers_path(project: Project) -> Path:
    """Every finished answer last collected: the copy that outlives a deleted Argilla account."""
    return project.output_folder("feedback") / "finished_answers.parquet"


def read_kept_answers(project: Project, columns: list[str]) -> pd.DataFrame:
    path = kept_answers_path(project)
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=columns)
