"""The last collected feedback per annotator dataset, so a refresh reads only the records that changed.

A refresh after ten new submissions should not cost a full read of every dataset. When the
server moves a record's `updated_at` with its responses (the embedded server does, and says
so in GET /api/v1/status), the pipeline keeps each dataset's feedback rows and the server's
time taken before the read; the next read asks only for records updated since then and
replaces their rows. The merged rows are trusted only if they agree with the
server's own counts (records in the dataset, responses per status); otherwise, and on any
other server, the dataset is read in full.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from ..logic.ids import ids_in
from ..logic.vocabulary import ANSWER_STATUSES


def merge_changed(previous: pd.DataFrame, changed: pd.DataFrame) -> pd.DataFrame:
    """The previous rows with every row of a changed record replaced by the record's current rows."""
    kept = previous[~ids_in(previous["record_id"], set(changed["record_id"]))]
    if changed.empty:
        return kept.reset_index(drop=True)
    return pd.concat([kept, changed], ignore_index=True)


def agrees_with_server(rows: pd.DataFrame, record_total: int, progress: dict[str, dict]) -> bool:
    """Same number of records, and the same number of submitted, discarded and draft responses, as the server counts."""
    if rows["record_id"].nunique() != record_total or len(rows.drop_duplicates(["record_id", "annotator"])) != len(
        rows
    ):
        return False
    counts = rows["status"].value_counts()
    return all(
        int(counts.get(status, 0)) == sum(user[status] for user in progress.values()) for status in ANSWER_STATUSES
    )


class FeedbackCache:
    """Feedback rows and read watermark per dataset id, in a folder of the pipeline's outputs, per Argilla server."""

    def __init__(self, folder: Path, api_url: str):
        self.folder = folder / hashlib.blake2b(api_url.rstrip("/").encode(), digest_size=6).hexdigest()
        self.folder.mkdir(parents=True, exist_ok=True)

    def _paths(self, dataset_id: str) -> tuple[Path, Path]:
        return self.folder / f"{dataset_id}.parquet", self.folder / f"{dataset_id}.json"

    def load(self, dataset_id: str) -> tuple[pd.DataFrame, str] | None:
        """The rows and watermark last saved for the dataset, or None if there are none (or they are unreadable)."""
        rows_path, state_path = self._paths(dataset_id)
        try:
            watermark = json.loads(state_path.read_text())["read_since"]
            return pd.read_parquet(rows_path), watermark
        except (OSError, ValueError, KeyError):
            return None

    def save(self, dataset_id: str, rows: pd.DataFrame, watermark: str) -> None:
        rows_path, state_path = self._paths(dataset_id)
        # Rows first, then the watermark: a crash in between leaves an old watermark, which only re-reads more.
        rows.to_parquet(rows_path, index=False)
        state_path.write_text(json.dumps({"read_since": watermark}))
