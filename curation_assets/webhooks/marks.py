"""Where the webhook receiver leaves word for the sensors: one small file per Argilla dataset name.

The receiver moves a dataset's mark when a finished answer in it changes; each project's sensor
reads the marks of its dataset names every few seconds and polls Argilla when one moved. A file
per name, replaced atomically, needs no server of its own and survives restarts of either side;
a sensor that finds no file (no receiver yet, or one that never heard of the dataset) just polls
on its usual schedule.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from .. import state

# Argilla 2.8's dataset names are letters, digits, "-" and "_": such a name is its own file name.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")
SUFFIX = ".mark"


def default_marks_dir() -> Path:
    return state.state_dir() / "webhooks" / "marks"


class WebhookMarks:
    """The marks in one folder: `record` (the receiver) moves a dataset's mark, `read` (the sensors) looks at them."""

    def __init__(self, folder: Path | str | None = None):
        self.folder = Path(folder) if folder else default_marks_dir()
        self._lock = threading.Lock()

    def _path(self, dataset: str) -> Path:
        name = (
            dataset
            if PLAIN_NAME.match(dataset)
            else "h-" + hashlib.blake2b(dataset.encode(), digest_size=12).hexdigest()
        )
        return self.folder / f"{name}{SUFFIX}"

    def record(self, dataset: str) -> str:
        """Move the dataset's mark; returns the new one."""
        mark = f"{time.time():.6f}-{secrets.token_hex(4)}"
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self._path(dataset)
            # Written beside, then renamed over: a sensor never reads half a mark.
            descriptor, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            with os.fdopen(descriptor, "w") as handle:
                json.dump({"dataset": dataset, "mark": mark}, handle)
            os.replace(temporary, path)
        return mark

    def read(self, datasets: Iterable[str]) -> dict[str, str]:
        """The current mark of each dataset that has one."""
        marks = {}
        for dataset in datasets:
            try:
                marks[dataset] = json.loads(self._path(dataset).read_text())["mark"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return marks
