"""Where a clone keeps its state: one folder, `.local/` beside the code, or `$CURATION_STATE_DIR`.

Everything a run leaves behind lives under it, so two clones never share state and deleting it
(`curation-quickstart --fresh`) starts over from nothing:

    .local/argilla/              the embedded Argilla's database, credentials and log
    .local/dagster/              DAGSTER_HOME: runs, event log, asset storage
    .local/output/<project>/     what each curation project publishes

The folder is private to its owner (0700): it holds the annotators' names and answers and,
in argilla/, every account's secrets.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "CURATION_STATE_DIR"
PRIVATE_DIR_MODE = 0o700


def repository_root() -> Path:
    """The clone this package runs from (it is installed editable: the project definitions live in it)."""
    return Path(__file__).resolve().parents[1]


def state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return repository_root() / ".local"


def dagster_home() -> Path:
    return state_dir() / "dagster"


def argilla_data_dir() -> Path:
    return state_dir() / "argilla"


def project_output_dir(project_name: str) -> Path:
    ensure_state_dir()
    return state_dir() / "output" / project_name


def ensure_state_dir() -> Path:
    """The state folder, created if missing, readable by its owner only."""
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(PRIVATE_DIR_MODE)
    return folder
