"""A declared curation project, end to end on the real embedded Argilla: every run curates the declared source,
a source switch is refused (or replaces the source, keeping every answer), and two projects never mix."""

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from curation_assets.defs.build import ASSET_NAMES, build_project_definitions
from curation_assets.defs.project import CurationProject, Project
from curation_assets.defs.source_loading import load_source
from curation_assets.local_argilla.process import start_embedded_argilla
from curation_assets.logic.source import content_ids
from curation_assets.quickstart.simulation import SimulationPlan, simulate_annotator
from curation_assets_tests.harness import PLAN, ProjectOnServer, metadata_of

pytestmark = pytest.mark.server
ANNOTATORS = ["ana", "bruno"]
USER_ROWS = [
    {"prompt": f"How do I do task {i}?", "answer": f"Do step {i}, then check the result carefully.", "kind": "open_qa"}
    for i in range(6)
]
USER_MAPPING = {"prompt": "instruction", "answer": "response", "kind": "category"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module: each test's projects have names (so datasets) of their own."""
    server = start_embedded_argilla(tmp_path_factory.mktemp("argilla"), annotator_names=ANNOTATORS)
    yield server
    server.stop()


def answer_everything(pipeline: ProjectOnServer) -> None:
    for account in pipeline.server.credentials.annotators:
        if account.username in pipeline.partitions:
            plan = SimulationPlan(share=1.0, submit_unchanged=0.5, submit_edited=0.5, discard=0.0)
            simulate_annotator(pipeline.server.url, account.api_key, account.username, plan, pipeline.dataset_name)


def test_every_run_of_a_file_project_curates_only_that_file(server, instance, tmp_path):
    source = write_jsonl(tmp_path / "mine.jsonl", USER_ROWS)
    mine = ProjectOnServer(
        server, instance, tmp_path, name="mine", source={"file": str(source), "column_mapping": USER_MAPPING}
    )
    user_ids = set(content_ids(load_source(str(source), column_mapping=USER_MAPPING)))

    first = mine.materialize(PLAN)
    raw = metadata_of(first, mine.node("raw_dolly"))
    assert raw["source"] == f"file:{source}" and "derived from each record's content" in raw["ids"]
    mine.push_all_shards()
    answer_everything(mine)
    _, curated = mine.refresh()
    assert set(curated["id"]) == user_ids, "only the user's records, every one answered"

    # An annotator joins: the sensor registers her and asks for a plan run, which the daemon launches
    # by job name, with no run config, exactly as a Materialize click in the UI does.
    server_owner = mine.argilla
    server_owner.request(
        "POST",
        "/api/v1/users",
        json={"first_name": "Dora", "username": "dora", "password": "dora-password-1", "role": "annotator"},
    )
    tick = mine.sensor_tick()
    assert mine.job_name("plan_assignments") in [request.job_name for request in tick.run_requests]
    assert [list(request.partition_keys) for request in tick.dynamic_partitions_requests] == [["dora"]]
    instance.add_dynamic_partitions(mine.project.annotator_partitions.name, ["dora"])
    replan = mine.run_job("plan_assignments")
    assert replan.success
    assert set(replan.output_for_node(mine.node("raw_dolly"))["id"]) == user_ids, "the re-plan loads the declared file"
    mine.push_all_shards()
    _, curated = mine.refresh()
    assert set(curated["id"]) == user_ids
    held = {shard: {r["external_id"] for r in mine.argilla.iter_records(d.id)} for shard, d in mine.datasets().items()}
    assert set().union(*held.values()) == user_ids, "no record the user did not declare reached anyone"


def test_a_source_switch_is_refused_and_an_explicit_replace_keeps_every_answer(server, instance, tmp_path):
    excerpt = ProjectOnServer(server, instance, tmp_path, name="switch", source={"shipped": "dolly-excerpt"})
    excerpt.plan()
    excerpt.push_all_shards()
    answered = {}
    for account in server.credentials.annotators:
        plan = SimulationPlan(share=0.3, submit_unchanged=0.6, submit_edited=0.4, discard=0.0)
        simulate_annotator(server.url, account.api_key, account.username, plan, excerpt.dataset_name)
    feedback, _ = excerpt.refresh()
    answered = feedback[feedback["status"] != "pending"][["record_id", "shard", "status", "new_response"]]
    assert len(answered) > 0

    # The declaration now names another file: the re-plan is refused, naming both sources and the ways forward.
    source = write_jsonl(tmp_path / "other.jsonl", USER_ROWS)
    switched = {"file": str(source), "column_mapping": USER_MAPPING}
    refused = ProjectOnServer(server, instance, tmp_path, name="switch", source=switched)

    def held_records():
        return {
            shard: sorted(r["external_id"] for r in refused.argilla.iter_records(d.id))
            for shard, d in refused.datasets().items()
        }

    before = held_records()
    result = refused.materialize(PLAN, raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    message = failure.step_failure_data.user_failure_data.description
    assert f"declares the source file:{source}" in message and "were built from shipped:dolly-excerpt" in message
    assert "replaces: shipped:dolly-excerpt" in message and "project of its own" in message
    assert held_records() == before, "nothing pushed or withdrawn"
    pushing_anyway = refused.materialize(["annotator_shards"], partition_key="ana", raise_on_error=False)
    assert not pushing_anyway.success, "a push launched on its own is refused too"

    # The explicit replace: every answer kept, no record of the old source left pending, only the new source curated.
    replaced = ProjectOnServer(
        server, instance, tmp_path, name="switch", source={**switched, "replaces": "shipped:dolly-excerpt"}
    )
    replaced.plan()
    replaced.push_all_shards()
    feedback, curated = replaced.refresh()
    new_ids = set(content_ids(load_source(str(source), column_mapping=USER_MAPPING)))
    old_rows = feedback[~feedback["record_id"].isin(new_ids)]
    assert (old_rows["status"] != "pending").all(), "no record of the old source stays pending"
    kept = answered.merge(feedback, on="record_id", suffixes=("_before", "_after"))
    assert len(kept) == len(answered) and (kept["new_response_before"] == kept["new_response_after"]).all(), (
        "every answer kept"
    )
    assert set(curated["id"]) <= new_ids
    stamps = {shard: dataset.metadata.get("curation_source") for shard, dataset in replaced.datasets().items()}
    assert set(stamps.values()) == {f"file:{source}"}, "the datasets now remember the new source"


def test_two_projects_side_by_side_share_only_the_server(server, instance, tmp_path):
    source = write_jsonl(tmp_path / "mine.jsonl", USER_ROWS)
    team = {"annotators": ANNOTATORS}  # declared: accounts other tests add to the shared server stay out
    dolly = ProjectOnServer(
        server, instance, tmp_path / "dolly", name="side_dolly", source={"shipped": "dolly-excerpt"}, annotation=team
    )
    mine = ProjectOnServer(
        server,
        instance,
        tmp_path / "mine",
        name="side_mine",
        source={"file": str(source), "column_mapping": USER_MAPPING},
        annotation=team,
    )
    both = dg.Definitions.merge(dolly.definitions, mine.definitions)
    keys = {key.to_user_string() for key in both.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {f"{name}/{asset}" for name in ("side_dolly", "side_mine") for asset in ASSET_NAMES}
    assert {sensor.name for sensor in both.sensors} == {"side_dolly_annotator_activity", "side_mine_annotator_activity"}
    upstream = both.resolve_asset_graph().get(mine.key("curated_dolly")).parent_keys
    assert all(key.path[0] == "side_mine" for key in upstream), "lineage stays within the project"

    for project in (dolly, mine):
        project.plan()
        project.push_all_shards()
        answer_everything(project)
    _, dolly_curated = dolly.refresh()
    _, mine_curated = mine.refresh()
    assert len(dolly_curated) == 37 and len(mine_curated) == len(USER_ROWS)
    assert not set(dolly_curated["id"]) & set(mine_curated["id"])
    for annotator in ANNOTATORS:
        dolly_ids = {r["external_id"] for r in dolly.argilla.iter_records(dolly.datasets()[annotator].id)}
        mine_ids = {r["external_id"] for r in mine.argilla.iter_records(mine.datasets()[annotator].id)}
        assert dolly_ids and mine_ids and not dolly_ids & mine_ids, f"{annotator} has one dataset per project"
    assert (tmp_path / "dolly" / "output" / "curated_dolly").is_dir() and (
        tmp_path / "mine" / "output" / "curated_dolly"
    ).is_dir()


def test_the_repository_declares_the_demo_project_as_a_dagster_component():
    from curation_assets.definitions import defs

    definition = (
        Path(__file__).resolve().parents[1] / "curation_assets" / "defs" / "projects" / "dolly_excerpt" / "defs.yaml"
    )
    declared = yaml.safe_load(definition.read_text())
    assert declared["type"] == "curation_assets.defs.project.CurationProject"
    graph = defs.resolve_asset_graph()
    assert {key.to_user_string() for key in graph.get_all_asset_keys()} >= {
        f"dolly_excerpt/{name}" for name in ASSET_NAMES
    }
    project = Project.declared(CurationProject(**declared["attributes"]), definition.parent, definition.parents[4])
    assert project.dataset_name == "curate_dolly" and project.source.identity == "shipped:dolly-excerpt"


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"source": {"file": "a.jsonl", "hub": "org/data"}}, "exactly one of file, hub or shipped"),
        ({"source": {}}, "exactly one of file, hub or shipped"),
        ({"source": {"file": "a.jsonl"}, "annotaters": "all"}, "annotaters"),
        ({"name": "My Project", "source": {"file": "a.jsonl"}}, "lower-case letters"),
    ],
)
def test_a_bad_declaration_is_refused_with_what_to_fix(attributes, message):
    with pytest.raises(ValueError, match=message):
        CurationProject(**attributes)


def test_build_needs_no_server_or_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    project = Project.in_code("offline", source={"file": str(tmp_path / "later.jsonl")})
    definitions = build_project_definitions(project)
    assert definitions.resolve_job_def("offline_plan_assignments")
