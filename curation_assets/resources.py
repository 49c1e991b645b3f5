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
from argilla._exceptions import ArgillaAPIError
from pydantic import Field, PrivateAttr

from .local_argilla.identity import NoServerAnswersError, ServerIdentityError, verify_before_sending_key
from .argilla_transport import (
    LOCAL_SERVER_HINT,
    ArgillaUnavailableError,
    RetryingTransport,
    RetryPolicy,
    is_transient_status,
    may_retry,
)

RECORD_PAGE_SIZE = 1000  # the server's maximum for GET /datasets/{id}/records
LOG_BATCH_SIZE = 500  # the server's maximum records per bulk request

__all__ = ["ArgillaResource", "ArgillaUnavailableError", "LOCAL_SERVER_HINT"]


class ArgillaResource(dg.ConfigurableResource):
    """An Argilla server reached with an owner's API key; the client is built on first use."""

    api_url: str = Field(description="Base URL of the Argilla server, e.g. http://127.0.0.1:6900")
    api_key: str = Field(description="API key of a user with the owner role")
    timeout_seconds: float = Field(default=120.0, description="Per-request timeout")
    retry_attempts: int = Field(
        default=6, ge=1, description="Tries per request on transient faults (connection lost, timeout, 5xx, 429); 1 = no retry"
    )
    retry_base_delay_seconds: float = Field(default=0.5, ge=0, description="First wait between tries; doubles each time, with jitter")
    retry_max_delay_seconds: float = Field(default=8.0, ge=0, description="Longest single wait between tries")
    retry_budget_seconds: float = Field(default=60.0, ge=0, description="Give up retrying a request after this long in all")
    record_page_size: int = Field(default=RECORD_PAGE_SIZE, ge=1, le=RECORD_PAGE_SIZE, description="Records per page when reading")
    log_batch_size: int = Field(default=LOG_BATCH_SIZE, ge=1, le=LOG_BATCH_SIZE, description="Records per bulk upsert request")

    _client: rg.Argilla | None = PrivateAttr(default=None)
    _http: httpx.Client | None = PrivateAttr(default=None)

    # -- connections -------------------------------------------------------------------

    def _transport(self) -> RetryingTransport:
        policy = RetryPolicy(
            max_attempts=self.retry_attempts,
            base_delay=self.retry_base_delay_seconds,
            max_delay=self.retry_max_delay_seconds,
            max_seconds=self.retry_budget_seconds,
        )
        return RetryingTransport(self.api_url, policy, log=dg.get_dagster_logger("argilla").warning)

    def for_polling(self) -> "ArgillaResource":
        """The same server with short retries: a sensor tick must end within Dagster's 60 s, and the next tick retries anyway."""
        return ArgillaResource(
            api_url=self.api_url,
            api_key=self.api_key,
            timeout_seconds=min(self.timeout_seconds, 15.0),
            retry_attempts=min(self.retry_attempts, 2),
            retry_base_delay_seconds=self.retry_base_delay_seconds,
            retry_max_delay_seconds=min(self.retry_max_delay_seconds, 2.0),
            retry_budget_seconds=min(self.retry_budget_seconds, 10.0),
        )

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._refuse_an_impostor()
            self._http = httpx.Client(
                base_url=self.api_url.rstrip("/"),
                headers={"X-Argilla-Api-Key": self.api_key},
                timeout=self.timeout_seconds,
                transport=self._transport(),
            )
        return self._http

    @property
    def client(self) -> rg.Argilla:
        if self._client is None:
            self.check_connection()
            # The SDK's own transport retries connection errors only, without backoff: route it through ours.
            self._client = rg.Argilla(
                api_url=self.api_url,
                api_key=self.api_key,
                timeout=int(self.timeout_seconds),
                mounts={"all://": self._transport()},
            )
        return self._client

    def _refuse_an_impostor(self) -> None:
        """Before the owner key of the embedded server leaves, the server on the port proves it is that server.

        Another process on the port (a leftover, or someone else's on a shared machine) would
        otherwise receive the key with the first request. Only the embedded server's own owner key
        is checked this way; a remote Argilla is never asked.
        """
        try:
            verify_before_sending_key(self.api_url, self.api_key)
        except NoServerAnswersError as error:
            raise ArgillaUnavailableError(f"cannot reach Argilla at {self.api_url}: {LOCAL_SERVER_HINT}") from error
        except ServerIdentityError as error:
            raise ArgillaUnavailableError(str(error)) from error

    def check_connection(self) -> dict:
        """The current user; raises ArgillaUnavailableError with the URL and what to do."""
        return self.request("GET", "/api/v1/me")

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            # Only faults that are not worth retrying get here (e.g. a POST cut off mid-way).
            raise ArgillaUnavailableError(
                f"cannot reach Argilla at {self.api_url}: {method} {path} failed ({type(error).__name__}): {LOCAL_SERVER_HINT}"
            ) from error
        if response.status_code == 401:
            raise ArgillaUnavailableError(
                f"Argilla at {self.api_url} rejected the API key (401): set ARGILLA_API_KEY to an owner's key "
                "(for the embedded server: `curation-argilla credentials --env`)"
            )
        if response.status_code == 403:
            raise ArgillaUnavailableError(
                f"Argilla at {self.api_url} refused {method} {path} (403): ARGILLA_API_KEY must be the key of a user "
                "with the owner role (for the embedded server: `curation-argilla credentials --env`)"
            )
        if is_transient_status(response.status_code):
            tries = self.retry_attempts if may_retry(method, status_code=response.status_code) else 1
            raise ArgillaUnavailableError(
                f"Argilla at {self.api_url} kept answering {response.status_code} to {method} {path} after "
                f"{tries} tries: {response.text[:300]}; check the server's log "
                "(for the embedded server: server.log in its data dir) and rerun"
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
        self, annotator: str, dataset_name: str, settings_factory: Callable[[], rg.Settings], metadata: dict | None = None
    ) -> rg.Dataset:
        """The annotator's own workspace (named after them) with the dataset in it, created if missing (with `metadata`).

        Settings come from a factory because argilla's field classes bind to the default client
        when constructed: they must be built after ours exists.
        """
        client = self.client
        with warnings.catch_warnings():
            # The client warns when a lookup finds nothing; here "not found yet" is the normal first run.
            warnings.simplefilter("ignore", UserWarning)
            workspace = client.workspaces(annotator)
            dataset = client.datasets(dataset_name, workspace=workspace) if workspace else None
            user = client.users(username=annotator)
        if dataset is not None and self.request("GET", f"/api/v1/datasets/{dataset.id}")["status"] == "draft":
            # A creation cut short (server killed before publishing) leaves a draft without fields;
            # drafts cannot hold records, so nothing is lost by starting it over.
            self.request("DELETE", f"/api/v1/datasets/{dataset.id}")
            dataset = None
        if user is None:
            if dataset is not None:
                # The account was deleted but its dataset stays: it is synced (untouched records
                # leave it) without re-adding anyone to the workspace.
                return dataset
            raise ValueError(f"Argilla at {self.api_url} has no user {annotator!r}: create the account first")
        workspace = workspace or rg.Workspace(name=annotator, client=client).create()
        if annotator not in {member.username for member in workspace.users}:
            workspace.add_user(user)
        if dataset is None:
            dataset = rg.Dataset(name=dataset_name, workspace=workspace, settings=settings_factory(), client=client).create()
            if metadata:
                self.stamp_dataset(str(dataset.id), metadata)
        return dataset

    def stamp_dataset(self, dataset_id: str, stamp: dict) -> None:
        """Merge these keys into the dataset's Argilla metadata (where a project records its source), if they differ."""
        current = self.request("GET", f"/api/v1/datasets/{dataset_id}").get("metadata") or {}
        if all(current.get(key) == value for key, value in stamp.items()):
            return
        if current:
            # argilla-server 2.8 merges a PATCHed dict into the stored one in place, so SQLAlchemy sees no
            # change and a new value for an existing key is silently dropped; cleared first, it is stored.
            self.request("PATCH", f"/api/v1/datasets/{dataset_id}", json={"metadata": None})
        self.request("PATCH", f"/api/v1/datasets/{dataset_id}", json={"metadata": {**current, **stamp}})

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
            try:
                # No larger than the push: the client warns when it has to shrink a batch itself.
                dataset.records.log(records, batch_size=min(self.log_batch_size, len(records)))
            except ArgillaAPIError as error:
                if not is_transient_status(error.status_code):
                    raise
                raise ArgillaUnavailableError(
                    f"Argilla at {self.api_url} kept failing ({error.status_code}) while upserting records into "
                    f"{dataset.name!r} after {self.retry_attempts} tries; check the server's log and rerun: "
                    "records are upserted by id, so the rerun duplicates nothing"
                ) from error

    def iter_records(self, dataset_id: str, include: tuple[str, ...] = ("responses",)) -> Iterator[dict]:
        """Raw record models, responses included as the server stores them (discards too)."""
        offset = 0
        while True:
            page = self.request(
                "GET",
                f"/api/v1/datasets/{dataset_id}/records",
                params={"include": list(include), "offset": offset, "limit": self.record_page_size},
            )["items"]
            yield from page
            if len(page) < self.record_page_size:
                return
            offset += len(page)

    def changes_since_now(self) -> str | None:
        """A lower bound for "updated from now on", in the server's clock (naive UTC), if this server can answer it.

        Only when a record's updated_at moves with its responses (the embedded server's search
        engine says so); otherwise None. The bound comes from the response's Date header (whole seconds), minus
        two seconds of slack: re-reading a few records is harmless, missing one is not.
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
                params={"include": ["responses"], "offset": offset, "limit": self.record_page_size},
                json=body,
            )["items"]
            yield from (item["record"] for item in page)
            if len(page) < self.record_page_size:
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
            self._http = None
        if self._client is not None:
            self._client.http_client.close()
            self._client = None
