"""The one door to Argilla: every call the pipeline makes to an Argilla server goes through here.

Argilla 2.8 is the last release of the 2.x line; keeping its API behind this resource means a
change of client or server touches one file.
"""

from __future__ import annotations

import datetime
import email.utils
import warnings
from typing import Any, Callable, Iterator

import argilla as rg
import dagster as dg
import httpx
from pydantic import Field, PrivateAttr

LOCAL_SERVER_HINT = "start the embedded server with `curation-argilla serve` (or point ARGILLA_API_URL elsewhere)"
RECORD_PAGE_SIZE = 1000  # the server's maximum for GET /datasets/{id}/records
LOG_BATCH_SIZE = 500  # the server's maximum records per bulk request


class ArgillaUnavailableError(RuntimeError):
    """Argilla could not be reached, or refused our key; the message names the URL and the next step."""


class ArgillaResource(dg.ConfigurableResource):
    """An Argilla server reached with an owner's API key; the client is built on first use."""

    api_url: str = Field(description="Base URL of the Argilla server, e.g. http://127.0.0.1:6900")
    api_key: str = Field(description="API key of a user with the owner role")
    timeout_seconds: float = Field(default=120.0, description="Per-request timeout")

    _client: rg.Argilla | None = PrivateAttr(default=None)
    _http: httpx.Client | None = PrivateAttr(default=None)

    # -- connections -------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                base_url=self.api_url.rstrip("/"),
                headers={"X-Argilla-Api-Key": self.api_key},
                timeout=self.timeout_seconds,
            )
        return self._http

    @property
    def client(self) -> rg.Argilla:
        if self._client is None:
            self.check_connection()
            self._client = rg.Argilla(api_url=self.api_url, api_key=self.api_key, timeout=int(self.timeout_seconds))
        return self._client

    def check_connection(self) -> dict:
        """The current user; raises ArgillaUnavailableError with the URL and what to do."""
        return self.request("GET", "/api/v1/me")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ArgillaUnavailableError(
                f"cannot reach Argilla at {self.api_url} ({type(error).__name__}): {LOCAL_SERVER_HINT}"
            ) from error
        if response.status_code == 401:
            raise ArgillaUnavailableError(
                f"Argilla at {self.api_url} rejected the API key (401): set ARGILLA_API_KEY to an owner's key "
                "(for the embedded server: `curation-argilla credentials --env`)"
            )
        if response.is_error:
            raise httpx.HTTPStatusError(
                f"Argilla at {self.api_url}: {method} {path} answered {response.status_code}: {response.text[:300]}",
                request=response.request,
                response=response,
            )
        return response.json() if response.content else None

    # -- users, workspaces, datasets ---------------------------------------------------

    def annotator_usernames(self) -> list[str]:
        users = self.request("GET", "/api/v1/users")["items"]
        return sorted(user["username"] for user in users if user["role"] == "annotator")

    def user_ids_by_name(self) -> dict[str, str]:
        return {user["username"]: user["id"] for user in self.request("GET", "/api/v1/users")["items"]}

    def datasets_named(self, dataset_name: str) -> dict[str, dict]:
        """Every dataset with this name, by workspace name (one per annotator in our layout)."""
        workspaces = {w["id"]: w["name"] for w in self.request("GET", "/api/v1/me/workspaces")["items"]}
        return {
            workspaces[dataset["workspace_id"]]: dataset
            for dataset in self.request("GET", "/api/v1/me/datasets")["items"]
            if dataset["name"] == dataset_name and dataset["workspace_id"] in workspaces
        }

    def ensure_annotator_dataset(
        self, annotator: str, dataset_name: str, settings_factory: Callable[[], rg.Settings]
    ) -> rg.Dataset:
        """The annotator's own workspace (named after them) with the dataset in it, created if missing.

        Settings come from a factory because argilla's field classes bind to the default client
        when constructed: they must be built after ours exists.
        """
        client = self.client
        with warnings.catch_warnings():
            # The client warns when a lookup finds nothing; here "not found yet" is the normal first run.
            warnings.simplefilter("ignore", UserWarning)
            workspace = client.workspaces(annotator)
            dataset = client.datasets(dataset_name, workspace=workspace) if workspace else None
        workspace = workspace or rg.Workspace(name=annotator, client=client).create()
        user = client.users(username=annotator)
        if user is None:
            raise ValueError(f"Argilla at {self.api_url} has no user {annotator!r}: create the account first")
        if annotator not in {member.username for member in workspace.users}:
            workspace.add_user(user)
        if dataset is None:
            dataset = rg.Dataset(name=dataset_name, workspace=workspace, settings=settings_factory(), client=client).create()
        return dataset

    def ensure_metadata_properties(self, dataset: rg.Dataset, properties: list) -> list[str]:
        """Add the metadata properties a dataset lacks (one created before they existed); returns the names added.

        Argilla allows new metadata properties on a dataset that already has records and answers,
        and rejects records carrying metadata a dataset does not declare.
        """
        existing = {prop.name for prop in dataset.settings.metadata}
        added = []
        for prop in properties:
            if prop.name not in existing:
                prop.dataset = dataset
                prop.create()
                dataset.settings.metadata.add(prop)
                added.append(prop.name)
        return added

    # -- records -----------------------------------------------------------------------

    def upsert_records(self, dataset: rg.Dataset, records: list[rg.Record]) -> None:
        """Create or update records by their id (Argilla's external_id): re-runs never duplicate."""
        if records:
            dataset.records.log(records, batch_size=LOG_BATCH_SIZE)

    def iter_records(self, dataset_id: str, include: tuple[str, ...] = ("responses",)) -> Iterator[dict]:
        """Raw record models, responses included as the server stores them (discards too)."""
        offset = 0
        while True:
            page = self.request(
                "GET",
                f"/api/v1/datasets/{dataset_id}/records",
                params={"include": list(include), "offset": offset, "limit": RECORD_PAGE_SIZE},
            )["items"]
            yield from page
            if len(page) < RECORD_PAGE_SIZE:
                return
            offset += len(page)

    def changes_since_now(self) -> str | None:
        """A lower bound for "updated from now on", in the server's clock (naive UTC), if this server can answer it.

        Only when a record's updated_at moves with its responses (the embedded server's search
        engine says so); otherwise None. The bound comes from the response's Date header, minus a
        second of slack: re-reading a few records is harmless, missing one is not.
        """
        response = self.http.get("/api/v1/status")
        response.raise_for_status()
        if not (response.json().get("search_engine") or {}).get("record_updated_at_tracks_responses"):
            return None
        now = email.utils.parsedate_to_datetime(response.headers["date"]).astimezone(datetime.timezone.utc)
        return (now.replace(tzinfo=None) - datetime.timedelta(seconds=2)).isoformat()

    def iter_records_updated_since(self, dataset_id: str, since: str) -> Iterator[dict]:
        """Raw record models (with responses) whose updated_at is at or after `since` (the server's naive UTC)."""
        body = {"filters": {"and": [{"type": "range", "scope": {"entity": "record", "property": "updated_at"}, "ge": since}]}}
        offset = 0
        while True:
            page = self.request(
                "POST",
                f"/api/v1/datasets/{dataset_id}/records/search",
                params={"include": ["responses"], "offset": offset, "limit": RECORD_PAGE_SIZE},
                json=body,
            )["items"]
            yield from (item["record"] for item in page)
            if len(page) < RECORD_PAGE_SIZE:
                return
            offset += len(page)

    def record_total(self, dataset_id: str) -> int:
        return self.request("GET", f"/api/v1/datasets/{dataset_id}/progress").get("total", 0)

    def delete_records(self, dataset_id: str, record_uuids: list[str]) -> None:
        for start in range(0, len(record_uuids), 100):
            chunk = record_uuids[start : start + 100]
            self.request("DELETE", f"/api/v1/datasets/{dataset_id}/records", params={"ids": ",".join(chunk)})

    def users_progress(self, dataset_id: str) -> dict[str, dict]:
        """Per user: counts of submitted, discarded and draft responses (cheap: one SQL aggregate)."""
        users = self.request("GET", f"/api/v1/datasets/{dataset_id}/users/progress")["users"]
        return {
            user["username"]: {
                status: user["completed"].get(status, 0) + user["pending"].get(status, 0)
                for status in ("submitted", "discarded", "draft")
            }
            for user in users
        }

    def render_text_fields_sanitized(self, dataset_id: str) -> list[str]:
        """Switch plain text fields to markdown, the one display Argilla 2.8's UI sanitizes; returns the fields switched.

        As plain text the UI sets a field as innerHTML (or an unsandboxed iframe), so markup in
        a record would run in the annotator's session. Datasets made before this rule get fixed here.
        """
        switched = []
        for field in self.request("GET", f"/api/v1/datasets/{dataset_id}/fields")["items"]:
            settings = field["settings"]
            if settings.get("type") == "text" and not settings.get("use_markdown"):
                self.request("PATCH", f"/api/v1/fields/{field['id']}", json={"settings": {"type": "text", "use_markdown": True}})
                switched.append(field["name"])
        return switched

    def teardown_after_execution(self, context) -> None:
        if self._http is not None:
            self._http.close()
