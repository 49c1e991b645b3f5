#!/usr/bin/env bash
# Make the agreement and pace tables the README shows: the quality-control example on the shipped
# excerpt, with simulated annotators working side by side at about 3 s a record (each at a speed of
# their own), in a state folder of its own; the tables land in docs/people_demo/.
set -euo pipefail
PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$(mktemp -d)"
DECLARED="$PROJECT_DIR/curation_assets/defs/projects/dolly_team"
# The demo's project declaration is removed afterwards unless it was yours already.
if [ -e "$DECLARED" ]; then KEEP_DECLARED=1; else KEEP_DECLARED=0; fi
trap 'rm -rf "$STATE"; [ "$KEEP_DECLARED" = 1 ] || rm -rf "$DECLARED"' EXIT
export CURATION_STATE_DIR="$STATE"
export CURATION_ARGILLA_PORT="${CURATION_ARGILLA_PORT:-6981}"
OUT="$PROJECT_DIR/docs/people_demo"
mkdir -p "$OUT"
# The run's own lines go to run.txt as well, up to the logins (passwords never land in the repository).
"$PROJECT_DIR/.venv/bin/curation-quickstart" --once --yes --simulate 0.6 --simulate-pace 3 \
    --project dolly_team --source shipped:dolly-excerpt --overlap 0.5 --reviewers chen |
    tee /dev/stderr | sed -e '/^New annotator logins/,$d' -e "s#$STATE#<state folder>#g" >"$OUT/run.txt"
cp "$STATE"/output/dolly_team/agreement/*.csv "$STATE"/output/dolly_team/pace/*.csv "$OUT/"
echo "tables written to $OUT"
