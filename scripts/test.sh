#!/usr/bin/env bash
# Set up and run the whole test suite: unit tests, the real embedded Argilla, Dagster, headless Chromium.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k sensor`).
set -euo pipefail
CURATION_EXTRAS="test" source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

CHROMIUM="${CURATION_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$CHROMIUM" ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Debian's chromium for the browser tests"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        CHROMIUM="$(command -v chromium)"
    else
        echo "The browser tests need Chromium: install it (e.g. 'sudo apt-get install chromium') or set CURATION_CHROMIUM." >&2
        exit 1
    fi
fi
export CURATION_CHROMIUM="$CHROMIUM"

# The team profile's tests start a private PostgreSQL and redis-server (installed here as root, as in CI).
# Missing, those tests fail with the way to install them; in CI the run stops here.
source "$PROJECT_DIR/scripts/team-packages.sh"
if ! ensure_team_packages && [ "${CI:-}" = "true" ]; then
    exit 1
fi

cd "$PROJECT_DIR"
# The style rules (pyproject's [tool.ruff]) hold before any test runs: a lint finding fails CI like a test.
"$PYTHON" -m ruff check --quiet .
"$PYTHON" -m ruff format --check --quiet .
"$PYTHON" -m codespell_lib
exec "$PYTHON" -m pytest "$@"
