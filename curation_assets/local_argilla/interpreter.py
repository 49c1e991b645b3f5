"""Which Python runs the embedded server: its own virtualenv, apart from the pipeline's.

argilla-server 2.8 pins typer 0.9 and pydantic 2.9, which Dagster's `dg` command line cannot
live with (it needs typer >= 0.15), so the server gets a virtualenv of its own
(`.venv-argilla`, made by scripts/setup.sh) and the pipeline reaches it only over HTTP. The
server's interpreter imports this package's `local_argilla` from the clone through a .pth file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

SERVER_PYTHON_ENV = "CURATION_ARGILLA_PYTHON"
SERVER_VENV = ".venv-argilla"


def server_python() -> str:
    """The interpreter that has argilla-server: $CURATION_ARGILLA_PYTHON, the clone's .venv-argilla, or this one."""
    configured = os.environ.get(SERVER_PYTHON_ENV)
    if configured:
        return configured
    beside_the_code = Path(__file__).resolve().parents[2] / SERVER_VENV / "bin" / "python"
    if beside_the_code.exists():
        return str(beside_the_code)
    if has_argilla_server():
        return sys.executable
    raise RuntimeError(
        f"no Python with argilla-server found: run `bash scripts/setup.sh` (it makes {SERVER_VENV}/), "
        f"or set {SERVER_PYTHON_ENV} to an interpreter that has argilla-server 2.8 installed"
    )


def has_argilla_server() -> bool:
    return importlib.util.find_spec("argilla_server") is not None


def server_command(*arguments: str) -> list[str]:
    """`curation-argilla ARGUMENTS` run by the server's interpreter."""
    return [server_python(), "-m", "curation_assets.local_argilla", *arguments]
