"""What the fault tests share beyond the pipeline harness: fault injection, and snapshots to compare runs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import dagster as dg
import httpx
import pandas as pd

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.defs.resources import ArgillaResource
from curation_assets.local_argilla.process import ArgillaServerProcess
from curation_assets.logic.inert_display import original_text
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.harness import ProjectOnServer


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The failed steps' errors with their causes, as the Dagster UI shows them."""
    return "\n".join(event.step_failure_data.error.to_string() for event in result.get_step_failure_events())


class ActAfter(httpx.BaseTransport):
    """Passes requests through; after the first answered request that matches (or each, `once=False`), runs `action`."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        matches: Callable[[httpx.Request], bool],
        action: Callable[[], None],
        once: bool = True,
    ):
        self.inner, self.matches, self.action, self.once = inner, matches, action, once
        self.done = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not (self.once and self.done) and self.matches(request):
            self.done = True
            self.action()
        return response

    def close(self) -> None:
        self.inner.close()


def is_bulk_upsert(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.url.path.endswith("/records/bulk")


class FaultOnNth(httpx.BaseTransport):
    """Passes requests through, except the `nth` one that matches: `fault(request, inner)` answers it and its retries.

    A fault strikes under the retries, as the network or a proxy would: each retry of the struck
    request (the same request object) goes to `fault` again, which may pass it on to the server.
    """

    def __init__(self, inner: httpx.BaseTransport, matches: Callable[[httpx.Request], bool], nth: int, fault):
        self.inner, self.matches, self.nth, self.fault = inner, matches, nth, fault
        self.seen = 0
        self.struck: httpx.Request | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.struck is None and self.matches(request):
            self.seen += 1
            if self.seen == self.nth:
                self.struck = request
        if request is self.struck:
            return self.fault(request, self.inner)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def answered_with(statuses: list[int]):
    """A fault: a busy server or proxy answers these statuses before the request reaches Argilla; then it passes."""
    remaining = list(statuses)

    def fault(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        if remaining:
            return httpx.Response(remaining.pop(0), text="injected", request=request)
        return inner.handle_request(request)

    return fault


def applied_then_dropped():
    """A fault: the server receives and applies the request, then the connection drops before its answer arrives (once)."""
    answers: list[int] = []

    def fault(request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        response = inner.handle_request(request)
        if answers:
            return response
        response.read()
        answers.append(response.status_code)
        raise httpx.RemoteProtocolError(
            f"connection dropped after the server answered {response.status_code}", request=request
        )

    fault.answers = answers
    return fault


class AnswersFirstWith(httpx.BaseTransport):
    """Answers the first requests with these statuses (a busy server or proxy), then passes requests through."""

    def __init__(self, inner: httpx.BaseTransport, statuses: list[int]):
        self.inner, self.statuses = inner, list(statuses)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.statuses:
            return httpx.Response(self.statuses.pop(0), text="injected", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def resource_with_transport(
    base: ArgillaResource, wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport], **settings
):
    """The same resource with its real transport wrapped, inside the retries, as a fault would strike."""

    class ArgillaWithFault(ArgillaResource):
        def network(self):
            return wrap(httpx.HTTPTransport())

    return ArgillaWithFault(api_url=base.api_url, api_key=base.api_key, **settings)


def resource_with_fault(base: ArgillaResource, matches, action, **settings) -> ArgillaResource:
    """The same resource, with a fault injected right after the first matching request has been answered."""
    return resource_with_transport(base, lambda inner: ActAfter(inner, matches, action), **settings)


def delete_curation_datasets(pipeline: ProjectOnServer) -> None:
    for dataset in pipeline.datasets().values():
        pipeline.argilla.delete_dataset(dataset)


def records_by_shard(pipeline: ProjectOnServer, argilla: ArgillaClient | None = None) -> dict[str, list[dict]]:
    """Every record of every annotator dataset, with responses, suggestions and metadata, as the server stores them."""
    argilla = argilla or pipeline.argilla
    return {
        shard: list(argilla.iter_records(dataset.id, include=("responses", "suggestions")))
        for shard, dataset in sorted(pipeline.datasets(argilla).items())
    }


def responses_by_record(pipeline: ProjectOnServer) -> dict[tuple[str, str], dict]:
    """(external id, user id) → the response as stored: status, values and timestamps."""
    return {
        (record["external_id"], response["user_id"]): response
        for records in records_by_shard(pipeline).values()
        for record in records
        for response in record.get("responses") or []
    }


def submit(
    pipeline: ProjectOnServer, annotator: str, record_ids: list[str], status: str = "submitted", mark: str = ""
) -> dict[str, dict]:
    """The annotator answers these records of their queue as the web UI does; returns what was sent."""
    server = pipeline.server
    account = next(account for account in server.credentials.annotators if account.username == annotator)
    sent = {}
    with AnnotatorSession(server.url, account.api_key) as session:
        dataset_id = session.dataset_id(pipeline.dataset_name, annotator)
        queue, _ = session.queue(dataset_id, limit=1000)
        for record in queue:
            if record.external_id in record_ids:
                answers = {
                    "new-instruction": f"{original_text(record.fields['instruction'])} {mark}".strip(),
                    "new-response": f"{original_text(record.fields['response'])} {mark}".strip(),
                }
                session.respond(record, status, answers)
                sent[record.external_id] = answers
    return sent


def comparable_curated(curated: pd.DataFrame) -> list[dict]:
    return curated.sort_values("id").to_dict("records")


def comparable_argilla(pipeline: ProjectOnServer) -> dict[str, dict]:
    """What an annotator sees and answered, per shard and record, without ids or timestamps."""
    return {
        shard: {
            record["external_id"]: {
                "fields": record["fields"],
                "suggestions": sorted((str(s["value"]), s["agent"]) for s in record.get("suggestions") or []),
                "responses": sorted((r["status"], str(r["values"])) for r in record.get("responses") or []),
                "metadata": record.get("metadata") or {},
            }
            for record in records
        }
        for shard, records in records_by_shard(pipeline).items()
    }


def bytes_waiting_unread(port: int) -> bool:
    """Whether a connection to this local port holds received bytes its server has not read (the kernel's socket table)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as sockets:
            for line in sockets.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                established = fields[3] == "01"
                rx_queue = int(fields[4].split(":")[1], 16)
                if local_port == port and established and rx_queue > 0:
                    return True
    return False


class KilledWithTheRequestInFlight:
    """A fault: the server is killed (SIGKILL) while the request's bytes wait in its socket, then started again.

    The server is frozen (SIGSTOP) before the request is sent and killed once the kernel shows the
    request's bytes received but unread, so the kill lands with the batch in flight, every time.
    The client sees the connection reset and retries; the server comes back on the same port and data dir.
    """

    def __init__(self, server):
        self.server = server
        self.killed_with_bytes_unread = False
        self.restarted = None
        self._restarter: threading.Thread | None = None

    def __call__(self, request: httpx.Request, inner: httpx.BaseTransport) -> httpx.Response:
        if self._restarter is not None:
            return inner.handle_request(request)
        os.killpg(self.server.pid, signal.SIGSTOP)
        killer = threading.Thread(target=self._kill_once_the_request_waits)
        killer.start()
        try:
            return inner.handle_request(request)
        finally:
            killer.join()
            self.restarted = ArgillaServerProcess(self.server.config)
            self._restarter = threading.Thread(target=self.restarted.start)
            self._restarter.start()

    def _kill_once_the_request_waits(self) -> None:
        port = int(self.server.url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while not bytes_waiting_unread(port) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.killed_with_bytes_unread = bytes_waiting_unread(port)
        self.server.kill()

    def stop(self) -> None:
        if self._restarter is not None:
            self._restarter.join()
            self.restarted.stop()
