"""The code location loads as Dagster would load it, and the Quickstart's run-once path works end to end."""

import json
import os
import subprocess
import sys

import dagster as dg
import pandas as pd

from curation_assets.local_argilla.process import free_port

ALL_ASSETS = {"raw_dolly", "quality_signals", "annotation_assignments", "annotator_shards", "collected_feedback", "change_statistics", "curated_dolly"}


def test_definitions_load_with_lineage_in_pipeline_order():
    from curation_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} == ALL_ASSETS
    upstream = {
        key.to_user_string(): {parent.to_user_string() for parent in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert upstream == {
        "raw_dolly": set(),
        "quality_signals": {"raw_dolly"},
        "annotation_assignments": {"raw_dolly"},
        "annotator_shards": {"raw_dolly", "quality_signals", "annotation_assignments"},
        "collected_feedback": {"annotator_shards"},
        "change_statistics": {"collected_feedback", "quality_signals"},
        "curated_dolly": {"collected_feedback", "quality_signals", "change_statistics"},
    }
    assert defs.get_sensor_def("annotator_activity_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    for job in ("plan_assignments", "push_shards", "refresh_curation"):
        assert defs.resolve_job_def(job)


def test_quickstart_runs_once_end_to_end(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("ARGILLA_", "DAGSTER_HOME", "CURATION_"))}
    result = subprocess.run(
        [
            sys.executable, "-m", "curation_assets.quickstart", "--once", "--simulate", "0.5",
            "--state-dir", str(tmp_path / "state"),
            "--argilla-data-dir", str(tmp_path / "argilla"),
            "--argilla-port", str(free_port()),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "SIMULATION: annotators answer 50%" in result.stdout
    for annotator in ("ana", "bruno", "chen"):
        assert f"  {annotator}" in result.stdout and "password:" in result.stdout
    curated = pd.read_parquet(tmp_path / "state" / "output" / "curated_dolly" / "curated_dolly.parquet")
    assert len(curated) > 0 and curated["id"].is_unique
    card = (tmp_path / "state" / "output" / "curated_dolly" / "README.md").read_text()
    assert "cc-by-sa-3.0" in card
    credentials = json.loads((tmp_path / "argilla" / "credentials.json").read_text())
    assert credentials["owner"]["api_key"] not in result.stdout + result.stderr, "the owner key is never printed"


def test_output_dir_is_read_from_the_environment_when_a_run_writes(monkeypatch, tmp_path):
    from curation_assets.definitions import defs
    from curation_assets.storage import OUTPUT_DIR_ENV

    outputs = defs.resources["outputs"]  # built when the definitions were imported
    monkeypatch.setenv(OUTPUT_DIR_ENV, str(tmp_path / "published"))
    assert outputs.folder("statistics") == tmp_path / "published" / "statistics"
    assert (tmp_path / "published" / "statistics").is_dir()
