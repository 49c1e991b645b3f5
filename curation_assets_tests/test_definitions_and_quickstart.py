"""The code location loads as Dagster loads it, and the Quickstart works as a new user meets it: in a fresh copy of
the clone, with the README's own commands pasted as written."""

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from curation_assets.defs.build import ASSET_NAMES
from curation_assets.defs.source_loading import load_source
from curation_assets.local_argilla.interpreter import SERVER_PYTHON_ENV, server_python
from curation_assets.local_argilla.process import free_port
from curation_assets.logic.source import content_ids
from curation_assets_tests.browser import headless_page
from curation_assets_tests.dagster_web import dagster_webserver

REPOSITORY = Path(__file__).resolve().parents[1]
README_EXAMPLE = re.compile(
    r"<!-- README example \(CI runs it\): (?P<name>[\w-]+) -->\n```bash\n(?P<code>.*?)```", re.DOTALL
)
FAQ_MAPPING = {"question": "instruction", "details": "context", "answer": "response", "kind": "category"}


def test_definitions_load_with_lineage_in_pipeline_order():
    from curation_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    key = lambda name: f"dolly_excerpt/{name}"  # noqa: E731
    assert {asset.to_user_string() for asset in graph.get_all_asset_keys()} == {key(name) for name in ASSET_NAMES}
    upstream = {
        asset.to_user_string(): {parent.to_user_string() for parent in graph.get(asset).parent_keys}
        for asset in graph.get_all_asset_keys()
    }
    assert upstream == {
        key("raw_dolly"): set(),
        key("quality_signals"): {key("raw_dolly")},
        key("annotation_assignments"): {key("raw_dolly")},
        key("annotator_shards"): {key("raw_dolly"), key("quality_signals"), key("annotation_assignments")},
        key("collected_feedback"): {key("annotator_shards")},
        key("change_statistics"): {key("collected_feedback"), key("quality_signals")},
        key("annotator_agreement"): {key("collected_feedback"), key("quality_signals")},
        key("annotator_pace"): {
            key(name) for name in ("collected_feedback", "quality_signals", "change_statistics", "annotator_agreement")
        },
        key("review_queue"): {key("collected_feedback"), key("quality_signals")},
        key("review_shards"): {key("review_queue"), key("collected_feedback")},
        key("collected_reviews"): {key("review_shards")},
        key("curated_dolly"): {
            key(name)
            for name in (
                "collected_feedback",
                "quality_signals",
                "change_statistics",
                "review_queue",
                "collected_reviews",
            )
        },
    }
    assert defs.get_sensor_def("dolly_excerpt_annotator_activity").default_status == dg.DefaultSensorStatus.RUNNING
    for job in ("plan_assignments", "push_shards", "refresh_curation", "push_reviews"):
        assert defs.resolve_job_def(f"dolly_excerpt_{job}")


# -- a new user's clone ------------------------------------------------------------------------


class Clone:
    """A copy of the clone's files (what `git clone` gives, uncommitted files included), run with the project's
    virtualenvs."""

    def __init__(self, root: Path):
        self.root = root
        self.environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ARGILLA_", "DAGSTER_HOME", "CURATION_"))
        }
        self.environment.update(
            # The copy's code shadows the editable install's; the commands are the virtualenv's.
            PYTHONPATH=str(root),
            PATH=f"{REPOSITORY / '.venv' / 'bin'}:{os.environ['PATH']}",
            CURATION_ARGILLA_PORT=str(free_port()),
            **{SERVER_PYTHON_ENV: server_python()},
        )

    def run(self, command: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=self.root, env=self.environment, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def output(self, project: str) -> Path:
        return self.root / ".local" / "output" / project

    def curated(self, project: str) -> pd.DataFrame:
        return pd.read_json(self.output(project) / "curated_dolly" / "curated_dolly.jsonl", lines=True, dtype=False)


@pytest.fixture
def clone(tmp_path) -> Clone:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    root = tmp_path / "clone"
    for name in listed:
        if (REPOSITORY / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPOSITORY / name, root / name)
    return Clone(root)


def shown_line(shown: str, step: str) -> str:
    return next(line for line in shown.splitlines() if line.strip().startswith(step))


def succeeded(result: subprocess.CompletedProcess) -> str:
    shown = result.stdout + result.stderr
    assert result.returncode == 0, shown[-4000:]
    assert "Traceback" not in shown and " - DEBUG - " not in shown, shown[-4000:]
    return shown


@pytest.mark.server
def test_the_quickstart_prints_a_line_per_step_and_passwords_only_when_accounts_are_made(clone):
    first = succeeded(clone.run("curation-quickstart --once --simulate 0.5"))
    assert "SIMULATION: annotators answer 50%" in first
    assert re.search(r"raw_dolly\s+37 records valid, 0 quarantined", first)
    assert re.search(r"curated_dolly\s+\d+ records published \((original|human) \d+", first)
    assert "({})" not in first, "an empty breakdown is left out, not printed as a Python dict"
    # The embedded server this run started stops with it: its link says so.
    assert re.search(r"Argilla UI:\s+http://127.0.0.1:\d+\s+\(stops with this run", first)
    assert len(first.splitlines()) < 40, "one line per step, not Dagster's event stream"
    assert all(f"  {name:<10} password: " in first for name in ("ana", "bruno", "chen"))
    credentials = json.loads((clone.root / ".local" / "argilla" / "credentials.json").read_text())
    assert credentials["owner"]["api_key"] not in first, "the owner key is never printed"

    second = succeeded(clone.run("curation-quickstart --once"))
    assert "password:" not in second and "Annotator logins: " in second
    assert "New Argilla accounts" not in second and "migrat" not in second.lower(), "no replay of earlier server logs"
    assert second.count("nothing changed since the last push") == 3
    assert len(clone.curated("dolly_excerpt")) > 0
    assert sorted(path.name for path in (clone.root / ".local").iterdir()) == ["argilla", "dagster", "output"]
    assert (clone.root / ".local" / "dagster" / "dagster.yaml").exists() and list(
        (clone.root / ".local" / "dagster").rglob("runs.db")
    )
    # The state folder holds annotators' names and answers and every account's secrets: its owner's alone.
    state = [clone.root / ".local", *(clone.root / ".local").rglob("*")]
    modes = {str(path.relative_to(clone.root)): stat.S_IMODE(path.lstat().st_mode) for path in state}
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (clone.root / name).is_dir() else 0o600) and not (clone.root / name).is_symlink()
    }
    assert len(modes) > 20 and not wrong, f"not owner-only: {wrong}"


@pytest.mark.server
def test_the_readme_examples_run_as_written(clone):
    readme = (clone.root / "README.md").read_text()
    examples = {match["name"]: match["code"] for match in README_EXAMPLE.finditer(readme)}
    assert list(examples) == ["own-file", "rerun", "add-annotator", "remove-annotator", "start-over", "quality-control"]
    faq_ids = set(content_ids(load_source(str(clone.root / "examples" / "faq.jsonl"), column_mapping=FAQ_MAPPING)))

    own = succeeded(clone.run(examples["own-file"]))
    declared = yaml.safe_load((clone.root / "curation_assets" / "defs" / "projects" / "faq" / "defs.yaml").read_text())
    assert declared["attributes"]["source"] == {"file": "examples/faq.jsonl", "column_mapping": FAQ_MAPPING}
    assert "Declared project 'faq' in curation_assets/defs/projects/faq/defs.yaml" in own
    assert "Project dolly_excerpt" not in own, "only the project asked for runs"
    curated = clone.curated("faq")
    assert len(curated) > 0 and set(curated["id"]) <= faq_ids, "only the user's records are curated"

    rerun = succeeded(clone.run(examples["rerun"]))
    assert (
        rerun.count("nothing changed since the last push") == 3
        and "raw_dolly                          8 records" in rerun
    )
    assert set(clone.curated("faq")["id"]) <= faq_ids

    joined = succeeded(clone.run(examples["add-annotator"]))
    assert "dora" in joined and re.search(r"annotator_shards\[dora\]\s+[1-9]\d* pushed", joined)
    assert set(clone.curated("faq")["id"]) <= faq_ids

    without_chen = succeeded(clone.run(examples["remove-annotator"]))
    assignments = next(line for line in without_chen.splitlines() if "annotation_assignments" in line)
    assert "annotators: ['ana', 'bruno', 'dora']" in without_chen and "to 3 annotators" in assignments
    assert "chen" not in assignments.split(";")[0], f"chen keeps only what she answered: {assignments}"

    fresh = succeeded(clone.run(examples["start-over"]))
    assert f"Deleted {clone.root / '.local'}" in fresh and "New annotator logins" in fresh
    assert re.search(r"annotator_shards\[ana\]\s+[1-9]\d* pushed", fresh), "started from nothing"
    # dora's account went with the old state: the declared team's missing member is named, the rest carry on.
    assert "warning: declared annotator(s) ['dora'] have no annotator account" in fresh


@pytest.mark.server
@pytest.mark.browser
def test_the_readme_quality_control_example_runs_as_written(clone, artifacts_dir):
    readme = (clone.root / "README.md").read_text()
    example = {match["name"]: match["code"] for match in README_EXAMPLE.finditer(readme)}["quality-control"]
    shown = succeeded(clone.run(example))
    assert re.search(r"annotator_agreement\s+\d+ records answered by several annotators", shown)
    assert re.search(r"review_shards\[chen\]\s+[1-9]\d* pushed", shown) and "simulated reviewer chen" in shown
    curated = clone.curated("dolly_team")
    assert (curated["provenance"] == "adjudicated").sum() > 0 and set(
        curated.loc[curated["provenance"] == "adjudicated", "annotator"]
    ) == {"chen"}
    tables = clone.output("dolly_team")
    agreement = pd.read_csv(tables / "agreement" / "agreement_by_annotator.csv")
    pace = pd.read_csv(tables / "pace" / "pace.csv")
    assert set(agreement["annotator"]) == set(pace["annotator"]) == {"ana", "bruno", "chen"}

    # The same run in the Dagster UI: the agreement asset's page shows its figures and its chart.
    home = clone.root / ".local" / "dagster"
    environment = {**clone.environment, "CURATION_STATE_DIR": str(clone.root / ".local")}
    with dagster_webserver(home, environment, root=clone.root) as url, headless_page(1600, 1400) as page:
        page.goto(f"{url}/assets/dolly_team/annotator_agreement")
        for name in ("records_answered_by_several", "chart_agreement", "by_annotator", "pairs"):
            page.get_by_text(name, exact=True).first.wait_for(timeout=120_000)
        answered = re.search(r"(\d+) records answered by several", shown_line(shown, "annotator_agreement"))[1]
        row = page.locator("tr", has=page.get_by_text("records_answered_by_several", exact=True)).first
        assert row.inner_text().split()[-1] == answered, row.inner_text()
        page.screenshot(path=artifacts_dir / "dagster_annotator_agreement.png", full_page=True)


@pytest.mark.server
def test_a_bad_source_is_one_message_and_a_source_switch_is_refused(clone):
    (clone.root / "broken.jsonl").write_text(
        '{"instruction": "a", "response": "b", "category": "open_qa"}\n{"instruction": "cut'
    )
    broken = clone.run("curation-quickstart --once --project broken --source broken.jsonl")
    shown = broken.stdout + broken.stderr
    assert broken.returncode == 1 and "Traceback" not in shown and " - ERROR - " not in shown, shown[-3000:]
    assert "broken.jsonl ends in the middle of a record at line 2" in shown and "Download or export it again" in shown

    succeeded(clone.run("curation-quickstart --once --project dolly_excerpt"))
    definition = clone.root / "curation_assets" / "defs" / "projects" / "dolly_excerpt" / "defs.yaml"
    before = definition.read_text()
    switch = clone.run("curation-quickstart --once --project dolly_excerpt --source examples/faq.jsonl")
    assert switch.returncode == 2 and "Traceback" not in switch.stderr
    assert "were built from shipped:dolly-excerpt" in switch.stderr and "--replace-source" in switch.stderr
    assert definition.read_text() == before, "a refused switch changes nothing"
