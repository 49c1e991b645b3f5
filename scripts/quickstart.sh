#!/usr/bin/env bash
# Set up and run the pipeline on the embedded Argilla: starts Argilla and Dagster, pushes the
# shipped Dolly excerpt to the annotators. Arguments go to curation-quickstart (--simulate, --once, ...).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$PROJECT_DIR"
exec "$VENV_DIR/bin/curation-quickstart" "$@"
