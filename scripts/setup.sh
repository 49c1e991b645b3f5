#!/usr/bin/env bash
# Shared by quickstart.sh and test.sh: the project's two virtualenvs, with everything installed.
# Sourced, not run: it leaves PYTHON pointing at the pipeline's interpreter and .venv/bin on PATH.
#   .venv           the pipeline: Dagster (with `dg`), the argilla client, pandas, datasets, plotly
#   .venv-argilla   the embedded Argilla server: argilla-server 2.8, whose pins (typer 0.9, pydantic 2.9)
#                   `dg` cannot live with; the pipeline reaches it over HTTP only
# Versions come from constraints/*.txt (reproducible installs; `bash scripts/update-constraints.sh` renews them).
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${CURATION_VENV:-$PROJECT_DIR/.venv}"
SERVER_VENV_DIR="${CURATION_ARGILLA_VENV:-$PROJECT_DIR/.venv-argilla}"
EXTRAS="${CURATION_EXTRAS:-}"
PIP_QUIET=(--quiet --disable-pip-version-check)

find_python() {
    for candidate in python3.11 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "curation_assets needs Python 3.11 (python3.11 or python3 on PATH)." >&2
    exit 1
}

ensure_venv() {
    if [ ! -x "$1/bin/python" ]; then
        echo "Creating the virtualenv in $1"
        "$(find_python)" -m venv "$1"
        "$1/bin/python" -m pip install "${PIP_QUIET[@]}" --upgrade pip
    fi
}

ensure_venv "$VENV_DIR"
PYTHON="$VENV_DIR/bin/python"
"$PYTHON" -m pip install "${PIP_QUIET[@]}" -c "$PROJECT_DIR/constraints/project.txt" -e "$PROJECT_DIR${EXTRAS:+[$EXTRAS]}"

ensure_venv "$SERVER_VENV_DIR"
"$SERVER_VENV_DIR/bin/python" -m pip install "${PIP_QUIET[@]}" -c "$PROJECT_DIR/constraints/argilla-server.txt" \
    -r "$PROJECT_DIR/curation_assets/local_argilla/requirements.txt"
# The server imports this clone's curation_assets.local_argilla, nothing else of the project: a link to the
# package (not the clone's root, whose build metadata would make pip think the whole project is installed).
mkdir -p "$SERVER_VENV_DIR/clone"
ln -sfn "$PROJECT_DIR/curation_assets" "$SERVER_VENV_DIR/clone/curation_assets"
"$SERVER_VENV_DIR/bin/python" -c 'import site; print(site.getsitepackages()[0])' |
    xargs -I{} sh -c "echo '$SERVER_VENV_DIR/clone' > '{}/curation_assets_clone.pth'"
export CURATION_ARGILLA_PYTHON="$SERVER_VENV_DIR/bin/python"
export PATH="$VENV_DIR/bin:$PATH"
