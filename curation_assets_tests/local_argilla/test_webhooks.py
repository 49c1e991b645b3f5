"""Webhooks still fire on the embedded server: the webhook-event speedup skips work only when none is enabled,
and the set-based bulk write hands a request to the server's own path while one is (run with the speedups on and off).
"""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from curation_assets_tests.argilla_helpers import DOLLY_LIKE_ROWS, as_records, create_curation_dataset, owner_client

pytestmark = pytest.mark.server


@pytest.fixture
def webhook_listener():
    """A local HTTP endpoint that queues (path, JSON body) of every POST it receives."""
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.put((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()


def create_webhook(server, url: str, description: str, events=("record.created", "record.updated")) -> str:
    created = httpx.post(
        f"{server.url}/api/v1/webhooks",
        headers={"X-Argilla-Api-Key": server.owner_api_key},
        json={"url": url, "events": list(events), "description": description},
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def delete_webhook(server, webhook_id: str) -> None:
    httpx.delete(
        f"{server.url}/api/v1/webhooks/{webhook_id}", headers={"X-Argilla-Api-Key": server.owner_api_key}
    ).raise_for_status()


def test_enabled_webhook_receives_record_events_and_a_deleted_one_nothing(argilla_server_each_way, webhook_listener):
    server = argilla_server_each_way
    base, received = webhook_listener
    listening = create_webhook(server, f"{base}/hook", "test listener")
    dataset = create_curation_dataset(owner_client(server), "webhooks", "ana", "webhook_events")
    try:
        dataset.records.log(as_records(DOLLY_LIKE_ROWS[:2]))
        events = [received.get(timeout=30) for _ in range(2)]
        assert {path for path, _ in events} == {"/hook"}
        assert {event["type"] for _, event in events} == {"record.created"}
        assert {event["data"]["external_id"] for _, event in events} == {"0", "1"}
        assert all(event["data"]["dataset"]["name"] == "webhook_events" for _, event in events)

        dataset.records.log(as_records([{**DOLLY_LIKE_ROWS[0], "instruction": "Changed?"}]))
        path, event = received.get(timeout=30)
        assert (path, event["type"], event["data"]["external_id"], event["data"]["fields"]["instruction"]) == (
            "/hook",
            "record.updated",
            "0",
            "Changed?",
        )
    finally:
        delete_webhook(server, listening)

    # Deleted: the next records send it nothing. A control webhook, created after it, does receive them; it is
    # notified after the deleted one would have been, so once the control has both events nothing else is coming.
    control = create_webhook(server, f"{base}/control", "control listener", events=("record.created",))
    try:
        for row in DOLLY_LIKE_ROWS[2:4]:
            dataset.records.log(as_records([row]))
        after = [received.get(timeout=30) for _ in range(2)]
    finally:
        delete_webhook(server, control)
    # In either order: the embedded server posts each delivery from a thread of its own (runtime.py), as upstream's
    # workers would, so that a slow receiver never stalls the server.
    assert sorted((path, event["data"]["external_id"]) for path, event in after) == [
        ("/control", "2"),
        ("/control", "3"),
    ]
    assert received.empty(), "the deleted webhook received nothing"


def test_a_webhook_for_dataset_events_receives_them(argilla_server_each_way, webhook_listener):
    """The dataset-events speedup builds a dataset's event only when a webhook listens: one that does still gets
    created, published and updated."""
    server = argilla_server_each_way
    base, received = webhook_listener
    listening = create_webhook(
        server,
        f"{base}/datasets",
        "dataset listener",
        events=("dataset.created", "dataset.published", "dataset.updated"),
    )
    try:
        dataset = create_curation_dataset(owner_client(server), "webhooks", "ana", "dataset_events")
        httpx.patch(
            f"{server.url}/api/v1/datasets/{dataset.id}",
            headers={"X-Argilla-Api-Key": server.owner_api_key},
            json={"guidelines": "Changed guidelines."},
        ).raise_for_status()
        # The SDK's creation updates the dataset once (its guidelines) before publishing it.
        events = [received.get(timeout=30)[1] for _ in range(4)]
    finally:
        delete_webhook(server, listening)
    # In any order: each delivery is posted from a thread of its own.
    assert sorted(event["type"] for event in events) == [
        "dataset.created",
        "dataset.published",
        "dataset.updated",
        "dataset.updated",
    ]
    assert "Changed guidelines." in {event["data"]["guidelines"] for event in events}
    assert {event["data"]["name"] for event in events} == {"dataset_events"}
