"""An annotator's view of Argilla over REST, exactly the calls the web UI makes.

Annotators cannot use the owner endpoints (`/api/v1/datasets/{id}/records`): the UI reads
its queue from `/api/v1/me/datasets/{id}/records/search` and writes `/api/v1/records/{id}/responses`.
Used by the simulated annotators of the Quickstart and by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..argilla_adapter.rest import Connection, RestSession
from ..argilla_adapter.transport import RetryPolicy
from ..logic.vocabulary import ResponseStatus

# What the UI asks for when it opens the annotation page in "Pending" mode (a record's status is pending too
# until it has as many submissions as its dataset asks for).
PENDING_QUEUE_FILTERS = {
    "and": [
        {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": [ResponseStatus.PENDING]},
        {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]},
    ]
}


@dataclass
class QueuedRecord:
    id: str
    external_id: str
    fields: dict[str, Any]
    suggestions: dict[str, Any]
    my_response: dict[str, Any] | None


class AnnotatorSession(RestSession):
    """One annotator, authenticated by API key (the UI uses a token from its login; same endpoints)."""

    def __init__(self, api_url: str, api_key: str, timeout: float = 30.0):
        # An annotator in the UI would click again: a few quick retries, not the pipeline's patience.
        connection = Connection(
            api_url, api_key, timeout, RetryPolicy(max_attempts=3, base_delay=0.2, max_seconds=10.0)
        )
        super().__init__(connection, key_advice="an annotator's own key: `curation-argilla credentials`")
        self.user_id = self.request("GET", "/api/v1/me")["id"]

    def my_datasets(self) -> list[dict]:
        return self.request("GET", "/api/v1/me/datasets")["items"]

    def dataset_id(self, name: str, workspace_name: str) -> str:
        workspaces = {
            workspace["id"]: workspace["name"] for workspace in self.request("GET", "/api/v1/me/workspaces")["items"]
        }
        for dataset in self.my_datasets():
            if dataset["name"] == name and workspaces.get(dataset["workspace_id"]) == workspace_name:
                return dataset["id"]
        raise LookupError(f"dataset {name!r} is not visible to this annotator in workspace {workspace_name!r}")

    def queue(
        self, dataset_id: str, status: str = ResponseStatus.PENDING, offset: int = 0, limit: int = 10
    ) -> tuple[list[QueuedRecord], int]:
        """A page of the annotator's queue in the given response status, and the queue's total size."""
        filters = (
            PENDING_QUEUE_FILTERS
            if status == ResponseStatus.PENDING
            else {"and": [{"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": [status]}]}
        )
        body = self.request(
            "POST",
            f"/api/v1/me/datasets/{dataset_id}/records/search",
            params={"include": ["responses", "suggestions"], "offset": offset, "limit": limit},
            json={"filters": filters},
        )
        return [self._queued(item["record"]) for item in body["items"]], body["total"]

    def _queued(self, record: dict) -> QueuedRecord:
        mine = [response for response in record.get("responses") or [] if response["user_id"] == self.user_id]
        suggestions = {suggestion["question_id"]: suggestion for suggestion in record.get("suggestions") or []}
        return QueuedRecord(
            id=record["id"],
            external_id=record.get("external_id"),
            fields=record["fields"],
            suggestions=suggestions,
            my_response=mine[0] if mine else None,
        )

    def respond(self, record: QueuedRecord, status: str, answers: dict[str, str] | None = None) -> dict:
        """Submit, save as draft or discard; updates the annotator's earlier response if there is one."""
        values = None if answers is None else {question: {"value": value} for question, value in answers.items()}
        body = {"status": status, "values": values}
        if status == ResponseStatus.DISCARDED and values is None:
            body.pop("values")
        if record.my_response is None:
            return self.request("POST", f"/api/v1/records/{record.id}/responses", json=body)
        return self.request("PUT", f"/api/v1/responses/{record.my_response['id']}", json=body)

    def progress(self, dataset_id: str) -> dict:
        return self.request("GET", f"/api/v1/me/datasets/{dataset_id}/metrics")
