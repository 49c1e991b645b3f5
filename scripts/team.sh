#!/usr/bin/env bash
# The production profile on one machine, in one command: Argilla on PostgreSQL with several worker processes
# and a shared Redis, Dagster's instance on PostgreSQL with a run queue and a limit on the steps that write to
# Argilla (docs/team.md). Installs PostgreSQL and redis-server when run as root with apt-get.
# Arguments go to curation-quickstart (e.g. --argilla-workers 4, --once, --simulate).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/team-packages.sh"
ensure_team_packages
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$PROJECT_DIR"
exec "$VENV_DIR/bin/curation-quickstart" --profile team "$@"
