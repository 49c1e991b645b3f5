"""Webhook deliveries and the sensor's use of them, as plain functions: signatures, which events count, when to poll."""

import json

import pytest

from curation_assets.logic.activity import POLL_SECONDS, ArgillaActivity, SensorMemory, decide, needs_a_poll
from curation_assets.logic.webhook_events import WebhookRejected, change_to_refresh, secret_key, sign, verify

# The Standard Webhooks example (the spec's and the standardwebhooks package's own test vector), which
# argilla-server 2.8 signs with: our check agrees with the signer Argilla runs.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature=SPEC_SIGNATURE, message_id=SPEC_ID, timestamp=SPEC_TIMESTAMP):
    return {"Webhook-Id": message_id, "Webhook-Timestamp": str(timestamp), "Webhook-Signature": signature}


def test_a_delivery_signed_with_the_secret_is_accepted_and_any_change_is_refused():
    key = secret_key(SPEC_SECRET)
    assert sign(key, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    assert verify([key], headers(), SPEC_BODY, now=SPEC_TIMESTAMP + 1) == SPEC_ID
    # Several signatures in one header (a secret rotation upstream): one match is enough.
    assert verify([key], headers(f"v1,bm90IGl0 {SPEC_SIGNATURE}"), SPEC_BODY, now=SPEC_TIMESTAMP) == SPEC_ID
    refusals = {
        "body changed": (headers(), b'{"test": 2432232315}', SPEC_TIMESTAMP),
        "other secret": (headers(sign(secret_key("c2VjcmV0"), SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)), SPEC_BODY, SPEC_TIMESTAMP),
        "id changed": (headers(message_id="msg_other"), SPEC_BODY, SPEC_TIMESTAMP),
        "replayed later": (headers(), SPEC_BODY, SPEC_TIMESTAMP + 3600),
        "no signature": ({"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP)}, SPEC_BODY, SPEC_TIMESTAMP),
    }  # fmt: skip
    for case, (sent_headers, body, now) in refusals.items():
        with pytest.raises(WebhookRejected) as refused:
            verify([key], sent_headers, body, now=now)
        assert "MfKQ9r8G" not in str(refused.value), case


def event(kind: str, status: str, dataset="curation") -> dict:
    return {"type": kind, "version": 1, "data": {"status": status, "record": {"dataset": {"name": dataset}}}}


def test_submissions_discards_and_deletions_count_drafts_and_other_events_do_not():
    assert change_to_refresh(event("response.created", "submitted")).dataset == "curation"
    assert change_to_refresh(event("response.updated", "discarded", "curation_review")).dataset == "curation_review"
    assert change_to_refresh(event("response.deleted", "draft")) is not None, "a deleted answer may have been published"
    assert change_to_refresh(event("response.updated", "draft")) is None, "drafts are saved as people type"
    assert change_to_refresh(event("record.updated", "submitted")) is None
    assert change_to_refresh({"type": "response.created", "data": {"status": "submitted"}}) is None


COUNTS = {"curation": {"submitted": 3, "discarded": 0}}


def polled(now: float, marks=None, cursor=None, refresh_running=False, counts=COUNTS):
    activity = ArgillaActivity(annotators=["ana"], finished_by_dataset=counts)
    return decide(activity, {"ana"}, cursor, webhook_marks=marks or {}, refresh_running=refresh_running, now=now)


def test_a_moved_mark_asks_for_a_poll_at_once_and_a_refresh_even_when_no_count_moved():
    first = polled(now=1000.0)
    assert first.refresh  # the first poll ever publishes what is there
    assert needs_a_poll(first.cursor, {}, now=1001.0) is None, "no news, and the 30 s poll is not due"
    assert needs_a_poll(first.cursor, {}, now=1000.0 + POLL_SECONDS) == "time to poll"

    # An edit of a submitted answer moves no count: only the mark tells the sensor.
    assert needs_a_poll(first.cursor, {"curation": "m1"}, now=1002.0) == "webhook: answers changed in curation"
    edited = polled(now=1002.0, marks={"curation": "m1"}, cursor=first.cursor)
    assert edited.refresh and "webhook: answers changed in curation" in edited.reason
    assert needs_a_poll(edited.cursor, {"curation": "m1"}, now=1003.0) is None, "a mark is acted on once"


def test_a_burst_while_a_refresh_runs_gives_one_more_refresh_after_it():
    first = polled(now=1000.0)
    cursor, refreshes = first.cursor, 0
    # Ten answers in a burst, each moving the mark, while the refresh the first one started runs.
    for answer in range(10):
        marks = {"curation": f"m{answer}"}
        assert needs_a_poll(cursor, marks, now=1001.0 + answer) is not None
        tick = polled(
            1001.0 + answer, marks, cursor, refresh_running=True, counts={"curation": {"submitted": 4 + answer}}
        )
        assert not tick.refresh and "a refresh is running" in tick.reason
        cursor = tick.cursor
    assert SensorMemory.from_cursor(cursor).refresh_owed
    assert needs_a_poll(cursor, {"curation": "m9"}, now=1012.0) == "a refresh is owed"
    after = polled(1012.0, {"curation": "m9"}, cursor, refresh_running=False, counts={"curation": {"submitted": 13}})
    refreshes += after.refresh
    quiet = polled(1013.0, {"curation": "m9"}, after.cursor, counts={"curation": {"submitted": 13}})
    refreshes += quiet.refresh
    assert refreshes == 1 and not SensorMemory.from_cursor(quiet.cursor).refresh_owed


def test_without_any_mark_polling_still_finds_each_submission():
    """A lost delivery, a receiver that was down, or a server without webhooks: only slower."""
    first = polled(now=1000.0)
    assert needs_a_poll(first.cursor, {}, now=1010.0) is None
    later = polled(
        now=1000.0 + POLL_SECONDS, cursor=first.cursor, counts={"curation": {"submitted": 4, "discarded": 0}}
    )
    assert later.refresh and "new submissions or discards in: curation" in later.reason


def test_a_cursor_from_before_webhooks_is_read_as_its_counts():
    old = json.dumps(COUNTS)
    assert SensorMemory.from_cursor(old).finished_by_dataset == COUNTS
    assert not polled(now=1.0, cursor=old).refresh


def test_the_refresh_run_key_names_the_news_not_the_time_of_the_poll():
    """The same news asked for on two ticks (a failed refresh retried) must be one run key, so Dagster runs it once."""
    first, again = polled(now=1000.0), polled(now=1000.0 + POLL_SECONDS, cursor=polled(now=1000.0).cursor)
    assert SensorMemory.from_cursor(first.cursor).refresh_key() == SensorMemory.from_cursor(again.cursor).refresh_key()
    moved = polled(now=1040.0, marks={"curation": "m1"}, cursor=again.cursor)
    assert SensorMemory.from_cursor(moved.cursor).refresh_key() != SensorMemory.from_cursor(again.cursor).refresh_key()
