"""The team profile's Dagster instance: runs, events and schedules in PostgreSQL, a run queue, a pool for Argilla writes.

The database URL (it holds a password) is not written here: dagster.yaml names the variable,
CURATION_DAGSTER_DATABASE_URL, and Dagster reads it from the environment of each process
(webserver, daemon, runs).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..defs.resources import ARGILLA_WRITES_POOL
from .services import DAGSTER_DATABASE_URL_ENV

# Runs in progress at once, whatever launched them (the sensor, a backfill, the UI); the rest wait in the queue.
MAX_CONCURRENT_RUNS = 4
# Steps that write to Argilla at once, across all runs (see resources.ARGILLA_WRITES_POOL).
ARGILLA_WRITE_SLOTS = 1


def instance_settings(max_concurrent_runs: int = MAX_CONCURRENT_RUNS, argilla_write_slots: int = ARGILLA_WRITE_SLOTS):
    """dagster.yaml's content, as a dict."""
    return {
        "telemetry": {"enabled": False},
        "storage": {"postgres": {"postgres_url": {"env": DAGSTER_DATABASE_URL_ENV}}},
        # Runs that a sensor or the UI submits wait here; the daemon launches them as slots free up.
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": {
            "runs": {"max_concurrent_runs": max_concurrent_runs},
            # Only the assets that write to Argilla are in a pool; every pool without a limit of its own gets this one.
            "pools": {"default_limit": argilla_write_slots},
        },
    }


def write_instance_settings(dagster_home: Path, **limits: int) -> Path:
    """Write (or rewrite) DAGSTER_HOME/dagster.yaml for the team profile; returns its path."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    header = (
        "# Written by curation-quickstart --profile team (curation_assets/team/dagster_instance.py); see docs/team.md.\n"
        f"# Pool {ARGILLA_WRITES_POOL!r}: annotator_shards and review_shards, which write to Argilla.\n"
    )
    path.write_text(header + yaml.safe_dump(instance_settings(**limits), sort_keys=False))
    return path
