"""`argilla_matches_plan` on feedback frames shaped as `collected_feedback` builds them (pure logic of the check).

The pipeline tests run the same check against the embedded Argilla; these pin the cases a live
server does not produce on demand: a record a dataset holds twice, a planned record missing.
"""

import pandas as pd

from curation_assets.defs.checks import build_checks
from curation_assets.defs.project import Project


def _argilla_matches_plan():
    project = Project.in_code("checks", source={"file": "source.jsonl"})
    (check,) = [check for check in build_checks(project) if check.check_key.name == "argilla_matches_plan"]
    return check


def _plan(*pairs):
    return pd.DataFrame({"id": [record for record, _ in pairs], "annotator": [annotator for _, annotator in pairs]})


def _feedback(*rows):
    """One row per (record, dataset, annotator), as `collected_feedback` lists them (a pending row per unanswered copy)."""
    return pd.DataFrame(
        {
            "record_id": [record for record, _, _ in rows],
            "shard": [shard for _, shard, _ in rows],
            "annotator": [annotator for _, _, annotator in rows],
        }
    )


PLAN = _plan(("r1", "ana"), ("r2", "ana"), ("r3", "bruno"))


def test_passes_when_each_planned_record_is_held_once_where_planned():
    result = _argilla_matches_plan()(
        collected_feedback=_feedback(("r1", "ana", "ana"), ("r2", "ana", "ana"), ("r3", "bruno", "bruno")),
        annotation_assignments=PLAN,
    )
    assert result.passed
    assert result.metadata["held_twice_by_one_annotator"].value == 0


def test_fails_when_a_dataset_holds_a_record_twice():
    result = _argilla_matches_plan()(
        collected_feedback=_feedback(
            ("r1", "ana", "ana"), ("r1", "ana", "ana"), ("r2", "ana", "ana"), ("r3", "bruno", "bruno")
        ),
        annotation_assignments=PLAN,
    )
    assert not result.passed
    assert result.metadata["held_twice_by_one_annotator"].value == 1
    assert result.metadata["examples"].value == ["r1 in ana"]


def test_fails_on_a_planned_record_missing_and_names_it():
    result = _argilla_matches_plan()(
        collected_feedback=_feedback(("r1", "ana", "ana"), ("r3", "bruno", "bruno")),
        annotation_assignments=PLAN,
    )
    assert not result.passed
    assert result.metadata["planned_but_not_in_argilla"].value == 1
    assert result.metadata["examples"].value == ["r2 in ana"]
