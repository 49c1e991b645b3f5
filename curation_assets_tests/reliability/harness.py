"""What the fault tests share beyond the pipeline harness: fault injection, and snapshots to compare runs."""

from __future__ import annotations

from typing import Callable

import dagster as dg
import httpx
import pandas as pd

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.defs.resources import ArgillaResource
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.harness import ProjectOnServer


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The failed steps' errors with their causes, as the Dagster UI shows them."""
    return "\n".join(event.step_failure_data.error.to_string() for event in result.get_step_failure_events())


class ActAfter(httpx.BaseTransport):
    """Passes requests through; after the first answered request that matches, runs `action` (a crash)."""

    def __init__(self, inner: httpx.BaseTransport, matches: Callable[[httpx.Request], bool], action: Callable[[], None]):
        self.inner, self.matches, self.action = inner, matches, action
        self.done = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.done and self.matches(request):
            self.done = True
            self.action()
        return response

    def close(self) -> None:
        self.inner.close()


def is_bulk_upsert(request: httpx.Request) -> bool:
    return request.method == "PUT" and request.url.path.endswith("/records/bulk")


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


def resource_with_transport(base: ArgillaResource, wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport], **settings):
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
    """Every record of every annotator dataset, with responses and suggestions, as the server stores them."""
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


def submit(pipeline: ProjectOnServer, annotator: str, record_ids: list[str], status: str = "submitted", mark: str = "") -> dict[str, dict]:
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
                    "new-instruction": f"{record.fields['instruction']} {mark}".strip(),
                    "new-response": f"{record.fields['response']} {mark}".strip(),
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
            }
            for record in records
        }
        for shard, records in records_by_shard(pipeline).items()
    }
