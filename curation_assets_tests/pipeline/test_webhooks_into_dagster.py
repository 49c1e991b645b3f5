"""Argilla's answer webhooks wake the sensor: a real submission on the real server reaches the curated jsonl.

And polling stays the fallback: with the receiver down, the same sensor finds the next submission on its 30 s poll.
"""

import json
import time

import pytest

from curation_assets.logic.activity import POLL_SECONDS
from curation_assets.logic.vocabulary import ResponseStatus
from curation_assets.logic.webhook_events import secret_key
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets.quickstart.simulation import SIMULATION_MARK, simulated_answers
from curation_assets.webhooks.marks import WebhookMarks
from curation_assets.webhooks.receiver import WebhookReceiver
from curation_assets.webhooks.registration import register
from curation_assets_tests.harness import ProjectOnServer

pytestmark = pytest.mark.server
ANNOTATOR = "ana"


@pytest.fixture
def hooked(argilla_server, instance, tmp_path):
    """A project whose sensor reads webhook marks, its webhook registered in the server, the receiver listening."""
    marks = WebhookMarks(tmp_path / "marks")
    pipeline = ProjectOnServer(
        argilla_server,
        instance,
        tmp_path,
        name="hooked",
        annotation={"annotators": [ANNOTATOR]},
        argilla={"webhooks": {"marks_dir": str(marks.folder)}},
    )
    receiver = WebhookReceiver([], marks, port=0)
    webhook = register(pipeline.argilla, receiver.url)
    receiver.keys = [secret_key(webhook["secret"])]
    receiver.start()
    try:
        yield pipeline, receiver
    finally:
        receiver.stop()
        # The session's server is shared: no other test's answers are posted anywhere.
        pipeline.argilla.request("DELETE", f"/api/v1/webhooks/{webhook['id']}")


def requested_jobs(tick) -> list[str]:
    return [request.job_name for request in tick.run_requests or []]


def submit_one(server, dataset_name: str) -> tuple[str, str]:
    """The annotator submits an edit of their next pending record, as the UI does; its id and the new response."""
    account = next(account for account in server.credentials.annotators if account.username == ANNOTATOR)
    with AnnotatorSession(server.url, account.api_key) as session:
        dataset_id = session.dataset_id(dataset_name, ANNOTATOR)
        (record,), _ = session.queue(dataset_id, limit=1)
        answers = simulated_answers(record)
        session.respond(record, ResponseStatus.SUBMITTED, answers)
    return record.external_id, next(value for value in answers.values() if SIMULATION_MARK in value)


def curated_responses(pipeline: ProjectOnServer) -> dict[str, str]:
    path = pipeline.output_dir / "curated_dolly" / "curated_dolly.jsonl"
    return {row["id"]: row["response"] for row in map(json.loads, path.read_text().splitlines())}


def wait_for_mark(marks: WebhookMarks, dataset: str, before: str | None, seconds: float = 10.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        mark = marks.read([dataset]).get(dataset)
        if mark and mark != before:
            return mark
        time.sleep(0.05)
    raise AssertionError(f"no webhook delivery for {dataset} within {seconds} s")


def test_a_submission_wakes_the_refresh_and_a_missed_webhook_only_waits_for_the_poll(argilla_server, hooked):
    pipeline, receiver = hooked
    refresh = pipeline.job_name("refresh_curation")
    pipeline.plan()
    pipeline.push_all_shards()
    first = pipeline.sensor_tick()
    assert refresh in requested_jobs(first), "the first poll publishes what is there"
    assert pipeline.run_job("refresh_curation").success
    cursor = first.cursor

    quiet = pipeline.sensor_tick(cursor)
    assert not quiet.run_requests and "no webhook news" in quiet.skip_message, "no news: Argilla is not even polled"

    # A submission: Argilla posts response.created, the receiver checks its signature and moves the mark.
    record_id, response = submit_one(argilla_server, pipeline.dataset_name)
    wait_for_mark(receiver.marks, pipeline.dataset_name, before=None)
    assert receiver.counts["rejected"] == 0 and receiver.counts["marked"] >= 1
    woken = pipeline.sensor_tick(cursor)
    assert refresh in requested_jobs(woken), "the next tick (seconds, not the 30 s poll) asks for a refresh"
    assert any(f"webhook: answers changed in {pipeline.dataset_name}" in line for line in pipeline.sensor_log)
    assert pipeline.run_job("refresh_curation").success
    assert curated_responses(pipeline)[record_id] == response
    cursor = woken.cursor

    # The receiver is down: the delivery fails (Argilla logs it), the mark stays, and the next ticks skip...
    receiver.stop()
    record_id, response = submit_one(argilla_server, pipeline.dataset_name)
    skipped = pipeline.sensor_tick(cursor)
    assert not skipped.run_requests
    # ...until the poll is due (30 s after the last one; the cursor is aged rather than the test made to wait).
    aged = json.loads(cursor)
    aged["polled_at"] -= POLL_SECONDS
    polled = pipeline.sensor_tick(json.dumps(aged))
    assert refresh in requested_jobs(polled), "polling found the submission the webhook missed"
    assert pipeline.run_job("refresh_curation").success
    assert curated_responses(pipeline)[record_id] == response
