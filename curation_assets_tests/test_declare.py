"""Declaring and changing a project from the command line (quickstart/declare.py, cli._chosen_projects), without a server.

The README's examples run end to end in test_definitions_and_quickstart.py; these pin what a user does
next: change a project's team, overlap or reviewers a second time, and forget to name the project.
"""

import pytest

from curation_assets.quickstart import cli, declare
from curation_assets.quickstart.declare import ProjectRequest


@pytest.fixture
def projects(tmp_path, monkeypatch):
    folder = tmp_path / "projects"
    monkeypatch.setattr(declare, "projects_folder", lambda: folder)
    source = tmp_path / "mine.jsonl"
    source.write_text('{"instruction": "a", "context": "", "response": "b", "category": "open_qa"}\n')
    return source


def test_every_later_change_of_a_declared_team_is_written(projects):
    created = declare.declare(ProjectRequest(name="mine", source=str(projects), annotators=["ana", "bruno"]), {})
    assert created.action == "created"

    for team in (["ana", "bruno", "dora"], ["ana", "dora"]):
        changed = declare.declare(ProjectRequest(name="mine", annotators=team), {})
        assert changed.action == "updated" and changed.changes == [f"annotators: {team}"]
        assert declare.read_attributes("mine")["annotation"]["annotators"] == team

    assert declare.declare(ProjectRequest(name="mine", annotators=["ana", "dora"]), {}).action == "unchanged"


def test_changes_inside_the_overlap_and_review_blocks_are_written(projects):
    declare.declare(ProjectRequest(name="mine", source=str(projects), overlap_share=0.1, reviewers=["rita"]), {})
    changed = declare.declare(
        ProjectRequest(name="mine", overlap_share=0.2, overlap_annotators=3, reviewers=["rita", "sam"]), {}
    )
    assert changed.action == "updated"
    attributes = declare.read_attributes("mine")
    assert attributes["annotation"]["overlap"] == {"share": 0.2, "annotators_per_record": 3}
    assert attributes["review"]["reviewers"] == ["rita", "sam"]


def test_a_change_without_a_project_name_asks_for_one(projects):
    declare.declare(ProjectRequest(name="mine", source=str(projects)), {})
    arguments = cli._parser().parse_args(["--annotators", "ana,bruno,dora"])
    with pytest.raises(cli.QuickstartError, match=r"Name it with --project \(declared: mine\)"):
        cli._chosen_projects(arguments, argilla=None)
