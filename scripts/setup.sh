#!/usr/bin/env bash
# Shared by quickstart.sh and test.sh: a project virtualenv with everything installed.
# Sourced, not run: it leaves PYTHON pointing at the environment's interpreter.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${CURATION_VENV:-$PROJECT_DIR/.venv}"
EXTRAS="${CURATION_EXTRAS:-local}"

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

if [ ! -x "$VENV_DIR/bin/python" ]; then
    echo "Creating the virtualenv in $VENV_DIR"
    "$(find_python)" -m venv "$VENV_DIR"
fi
PYTHON="$VENV_DIR/bin/python"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e "$PROJECT_DIR[$EXTRAS]"
export PATH="$VENV_DIR/bin:$PATH"
