"""The load benchmark's parts against the real server: a simulated UI session answers, and the read-back catches loss.

bench/load.py measures; this only checks that what it measures is real (seconds, not minutes): an annotator's
UI session signs in, opens the dataset, answers records from the queue with the UI's request mix, and the
owner's read-back finds each answer exactly once; an answer the server does not hold is reported as such.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
import time
from pathlib import Path

import argilla as rg
import pytest

from curation_assets_tests.argilla_helpers import (
    DOLLY_LIKE_ROWS,
    as_records,
    create_curation_dataset,
    owner_client,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import load  # noqa: E402

pytestmark = pytest.mark.server

DATASET = "load_smoke"
ANNOTATOR = "load_smoke_annotator"
QUICK = load.Pace(low=0.05, high=0.1, burst_chance=0.0, arrival_seconds=0.0)


def test_a_ui_session_answers_and_every_answer_is_read_back_once(argilla_server):
    # An annotator of its own, so that no other test on the session's server sees this dataset on its home page.
    owner = owner_client(argilla_server)
    password = secrets.token_urlsafe(16)
    rg.User(username=ANNOTATOR, password=password, role="annotator", client=owner).create()
    dataset = create_curation_dataset(owner, ANNOTATOR, ANNOTATOR, DATASET)
    dataset.records.log(as_records(DOLLY_LIKE_ROWS))
    recorder = load.Recorder()
    session = load.UiSession(argilla_server.url, ANNOTATOR, password, recorder, random.Random(7))

    stop_at = time.monotonic() + 3.0
    asyncio.run(load.human_annotator(session, DATASET, QUICK, start_at=0.0, stop_at=stop_at))

    summary = recorder.summary()
    assert summary["errors"] == 0, summary["error_examples"]
    for kind in ("sign-in: token", "queue page", "submit", "dataset progress", "my metrics"):
        assert summary["kinds"][kind]["count"] >= 1, kind
    assert 2 <= len(session.answers) <= len(DOLLY_LIKE_ROWS)
    assert summary["kinds"]["submit"]["count"] == len(session.answers)
    assert {answer.status for answer in session.answers} <= {"submitted", "discarded"}

    verified = load.verify_answers(argilla_server.url, argilla_server.owner_api_key, [session])
    assert verified == {
        "accepted": len(session.answers),
        "present_exactly_once": len(session.answers),
        "missing": 0,
        "duplicated": 0,
        "different": 0,
        "unexpected": 0,
    }

    # The read-back is not a formality: an answer held with other values, and one the server never stored.
    first = session.answers[0]
    session.answers[0] = load.Answer(first.record_id, first.response_id, first.status, {"new-response": {"value": "?"}})
    session.answers.append(load.Answer("00000000-0000-0000-0000-000000000000", "x", "submitted", {}))
    verified = load.verify_answers(argilla_server.url, argilla_server.owner_api_key, [session])
    assert (verified["different"], verified["missing"]) == (1, 1)
    assert verified["present_exactly_once"] == verified["accepted"] - 2


def test_the_knee_is_the_first_count_that_misses_a_target():
    def step(annotators: int, p95_met: bool, zero_errors: bool = True) -> dict:
        return {"annotators": annotators, "verdict": {"p95_met": p95_met, "zero_errors": zero_errors}}

    assert load.knee([step(50, False), step(10, True), step(25, True)]) == {"last_met": 25, "first_missed": 50}
    assert load.knee([step(10, True), step(25, True, zero_errors=False)]) == {"last_met": 10, "first_missed": 25}
    assert load.knee([step(10, True)]) == {"last_met": 10, "first_missed": None}
