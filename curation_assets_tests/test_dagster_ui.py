"""The Dagster UI, in headless Chromium: the asset graph shows every asset of the declared project, and a
Materialize click runs the declared project's plan against the real embedded Argilla."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import httpx
import pytest

from curation_assets import state
from curation_assets.defs.build import ASSET_NAMES
from curation_assets_tests.browser import headless_page
from curation_assets_tests.dagster_web import LOCATION, dagster_webserver

pytestmark = [pytest.mark.browser, pytest.mark.server]
PROJECT = "dolly_excerpt"  # the project the repository declares (defs/projects/dolly_excerpt/defs.yaml)


def label(asset: str) -> re.Pattern:
    """A graph node's label: long names are shortened in the middle (annot…_assignments)."""
    head, tail = asset[:5], asset.split("_")[-1]
    return re.compile(rf"^({re.escape(asset)}|{re.escape(head)}.*….*_{re.escape(tail)})$")


def test_asset_graph_shows_every_asset_of_the_declared_project(tmp_path, artifacts_dir):
    # The UI only needs the definitions; Argilla is reached when something runs, not here.
    unused = {
        "ARGILLA_API_URL": "http://127.0.0.1:9",
        "ARGILLA_API_KEY": "unused-by-the-ui",
        state.STATE_DIR_ENV: str(tmp_path),
    }
    with dagster_webserver(tmp_path / "dagster", unused) as url, headless_page(width=1900, height=1000) as page:
        page.goto(f"{url}/asset-groups")
        page.get_by_text("Global asset lineage").wait_for(timeout=60_000)
        for asset in sorted(ASSET_NAMES):
            page.get_by_text(label(asset)).last.wait_for(timeout=60_000)
        page.screenshot(path=artifacts_dir / "dagster_asset_graph.png")


def launched_run_succeeds(page, home: Path) -> str:
    """After a launch: the toast's link opens the run's page; wait there for the run's end. Returns the run's id."""
    run_link = page.get_by_role("link", name="View", exact=True).and_(page.locator("a[href^='/runs/']"))
    run_link.wait_for(timeout=60_000)
    run_id = run_link.get_attribute("href").rsplit("/", 1)[1]
    assert re.fullmatch(r"[0-9a-f-]{36}", run_id), run_id
    run_link.click()
    page.wait_for_url(f"**/runs/{run_id}", timeout=60_000)
    ended = page.get_by_text(re.compile(r"^RUN_(SUCCESS|FAILURE)$")).first
    ended.wait_for(timeout=300_000)
    assert ended.inner_text() == "RUN_SUCCESS", (home / "webserver.log").read_text()[-4000:]
    return run_id


def test_materializing_in_the_ui_plans_and_pushes_the_declared_project_to_the_embedded_argilla(
    fresh_argilla_server, tmp_path, artifacts_dir
):
    server = fresh_argilla_server
    # What a user's shell holds (`curation-argilla credentials --env`); the state folder is the test's own.
    environment = {
        "ARGILLA_API_URL": server.url,
        "ARGILLA_API_KEY": server.owner_api_key,
        state.STATE_DIR_ENV: str(tmp_path),
    }
    home = tmp_path / "dagster"
    plan_job, push_job = f"{PROJECT}_plan_assignments", f"{PROJECT}_push_shards"
    with dagster_webserver(home, environment) as url, headless_page(width=1600, height=1000) as page:
        # The plan: "Materialize all" on the plan job's page.
        page.goto(f"{url}/locations/{LOCATION}/jobs/{plan_job}")
        page.get_by_role("button", name="Materialize all").click(timeout=120_000)
        plan_run = launched_run_succeeds(page, home)
        page.screenshot(path=artifacts_dir / "dagster_ui_plan_run.png")

        # ana's shard: "Materialize…" on the push job's page, her partition picked in the launch dialog.
        page.goto(f"{url}/locations/{LOCATION}/jobs/{push_job}")
        page.get_by_role("button", name="Materialize…").click(timeout=120_000)
        dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
        dialog.get_by_text("Select a partition or create one").click()
        page.get_by_role("menuitem", name=re.compile(r"^ana\b")).click()
        dialog.get_by_role("button", name="Launch 1 run").click()
        push_run = launched_run_succeeds(page, home)
        page.screenshot(path=artifacts_dir / "dagster_ui_push_run.png")

    with dg.instance_for_test(temp_dir=str(home)) as instance:
        assert instance.get_run_by_id(plan_run).job_name == plan_job
        assert (
            instance.get_run_by_id(push_run).job_name == push_job
            and instance.get_run_by_id(push_run).tags["dagster/partition"] == "ana"
        )
        keys = {
            name: dg.AssetKey([PROJECT, name]) for name in ("raw_dolly", "quality_signals", "annotation_assignments")
        }
        for key in keys.values():
            (materialization,) = instance.fetch_materializations(key, limit=5).records
            assert materialization.run_id == plan_run
        (plan,) = instance.fetch_materializations(keys["annotation_assignments"], limit=1).records
        metadata = {name: value.value for name, value in plan.asset_materialization.metadata.items()}
        # The declared source (the 37 shipped records), dealt to the annotators the embedded server has.
        assert metadata["source"] == "shipped:dolly-excerpt" and metadata["records"] == 37
        assert metadata["share_sizes"] == {"ana": 13, "bruno": 12, "chen": 12}
        assert sorted(instance.get_dynamic_partitions(f"{PROJECT}_annotators")) == ["ana", "bruno", "chen"]

    # In Argilla: ana's dataset, named as the project declares it, holds her 13 records; nobody else's was pushed.
    owner = {"X-Argilla-Api-Key": server.owner_api_key}
    workspaces = {
        w["id"]: w["name"] for w in httpx.get(f"{server.url}/api/v1/me/workspaces", headers=owner).json()["items"]
    }
    datasets = [
        d
        for d in httpx.get(f"{server.url}/api/v1/me/datasets", headers=owner).json()["items"]
        if d["name"] == "curate_dolly"
    ]
    assert [workspaces[d["workspace_id"]] for d in datasets] == ["ana"]
    records = httpx.get(
        f"{server.url}/api/v1/datasets/{datasets[0]['id']}/records", headers=owner, params={"limit": 100}
    ).json()
    assert len(records["items"]) == 13
