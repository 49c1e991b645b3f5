"""The webhook receiver: Argilla posts each answer's event here, and the project's sensor hears of it within seconds.

It does one thing per delivery: check the signature against the webhook secret, and, when the
event is a submission, discard or deletion, move the dataset's mark (marks.py). It launches
nothing and talks to no Dagster API: the sensor, which already decides every refresh, reads the
marks on its next tick (the daemon ticks every 5 s) and polls Argilla at once. So a delivery that
never arrives only slows a refresh down to the sensor's 30-second poll; it cannot lose an answer.

It listens on 127.0.0.1 by default: the embedded Argilla runs on the same machine. Answers are
quick (a file rename), because argilla-server 2.8 sends each delivery with a blocking HTTP call.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..logic.webhook_events import WebhookRejected, change_to_refresh, verify
from .marks import WebhookMarks

LOGGER = logging.getLogger("curation_assets.webhooks")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6910
PATH = "/argilla"
# A response event carries the record's fields and the answers; Dolly's longest rows are tens of KB.
MAX_BODY_BYTES = 8 * 1024 * 1024
# A client that opens a connection and sends nothing is dropped after this long.
READ_TIMEOUT_SECONDS = 10
# Message ids remembered to drop a replayed delivery (within the timestamp tolerance).
REMEMBERED_IDS = 10_000


class WebhookReceiver:
    """An HTTP server (a thread per request) bound at construction: `url` is known before Argilla is told of it."""

    def __init__(
        self, keys: list[bytes], marks: WebhookMarks, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> None:
        # Empty until the secret is known (it is generated when the webhook is registered, with this URL): every
        # delivery is refused meanwhile.
        self.keys = list(keys)
        self.marks = marks
        self.counts = {"accepted": 0, "marked": 0, "rejected": 0}
        self._seen_ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.server = ThreadingHTTPServer((host, port), _handler_for(self))
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.serve_forever()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """Status and a short text for one delivery (the body and the secret never reach a log)."""
        try:
            message_id = verify(self.keys, headers, body, time.time())
        except WebhookRejected as rejection:
            self._count("rejected")
            return 401, f"rejected: {rejection}"
        with self._lock:
            if message_id in self._seen_ids:
                return 200, "already received"
            self._seen_ids[message_id] = None
            while len(self._seen_ids) > REMEMBERED_IDS:
                self._seen_ids.popitem(last=False)
        try:
            event = json.loads(body)
        except ValueError:
            return 400, "the body is not JSON"
        self._count("accepted")
        change = change_to_refresh(event) if isinstance(event, dict) else None
        if change is None:
            return 200, "nothing a refresh publishes changed"
        self.marks.record(change.dataset)
        self._count("marked")
        LOGGER.info("webhook: %s (%s) in dataset %s: the sensor is told", change.event, change.status, change.dataset)
        return 200, "marked"

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = READ_TIMEOUT_SECONDS
        server_version = "curation-webhooks"
        sys_version = ""

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != PATH:
                return self._answer(404, f"not found: Argilla's webhook posts to {PATH}")
            length_header = self.headers.get("Content-Length")
            if length_header is None or not length_header.isdigit():
                return self._answer(411, "Content-Length required")
            length = int(length_header)
            if length > MAX_BODY_BYTES:
                return self._answer(413, f"body over {MAX_BODY_BYTES} bytes")
            body = self.rfile.read(length)
            status, text = receiver.handle(dict(self.headers.items()), body)
            if status == 401:
                LOGGER.warning("webhook from %s %s", self.client_address[0], text)
            self._answer(status, text)

        def do_GET(self) -> None:
            self._answer(405, "Argilla's webhooks POST here")

        do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

        def _answer(self, status: int, text: str) -> None:
            body = json.dumps({"detail": text}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status >= 400:
                # The body may be unread: the connection cannot carry another request.
                self.close_connection = True
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass  # no access log: the receiver logs what each delivery changed

    return Handler
