"""Webhooks still fire on the embedded server: the webhook-event speedup skips work only when none is enabled,
and the set-based bulk write hands a request to the server's own path while one is (run with the speedups on and off)."""

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
    """A local HTTP endpoint that queues the JSON body of every POST it receives."""
    received: queue.Queue = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.put(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_enabled_webhook_receives_record_created_and_updated_events(argilla_server_each_way, webhook_listener):
    server = argilla_server_each_way
    url, received = webhook_listener
    owner = {"X-Argilla-Api-Key": server.owner_api_key}
    created = httpx.post(
        f"{server.url}/api/v1/webhooks",
        headers=owner,
        json={"url": url, "events": ["record.created", "record.updated"], "description": "test listener"},
    )
    assert created.status_code == 201, created.text
    try:
        dataset = create_curation_dataset(owner_client(server), "webhooks", "ana", "webhook_events")
        dataset.records.log(as_records(DOLLY_LIKE_ROWS[:2]))

        events = [received.get(timeout=30) for _ in range(2)]
        assert {event["type"] for event in events} == {"record.created"}
        assert {event["data"]["external_id"] for event in events} == {"0", "1"}
        assert all(event["data"]["dataset"]["name"] == "webhook_events" for event in events)

        dataset.records.log(as_records([{**DOLLY_LIKE_ROWS[0], "instruction": "Changed?"}]))
        event = received.get(timeout=30)
        assert (event["type"], event["data"]["external_id"], event["data"]["fields"]["instruction"]) == ("record.updated", "0", "Changed?")
    finally:
        httpx.delete(f"{server.url}/api/v1/webhooks/{created.json()['id']}", headers=owner).raise_for_status()

    # Disabled again: logging more records sends nothing.
    dataset.records.log(as_records(DOLLY_LIKE_ROWS[2:3]))
    with pytest.raises(queue.Empty):
        received.get(timeout=2)
