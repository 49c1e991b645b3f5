"""The one door to Argilla: every call the pipeline makes to an Argilla server goes through `ArgillaClient`.

Argilla 2.8 is the last release of the 2.x line; keeping its API behind this client means a
change of client or server touches this package only. Raw REST where the SDK hides what the
pipeline needs (discards without values, progress counts, dataset metadata), the argilla SDK
where it builds what the server expects (dataset settings, reviewers' records). The annotators' shards are
pushed as the bulk API's JSON built straight from the frames (`upsert_record_items`): the SDK's
`records.log` built an `rg.Record` per row and turned each answer back into records, three times the
time of the request itself (bench/README.md, "Embedded Argilla push throughput").
"""

from __future__ import annotations

import datetime
import email.utils
import itertools
import json
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import argilla as rg
import httpx
from argilla._exceptions import ArgillaAPIError
from argilla._models import DatasetModel

from ..logic.vocabulary import ANSWER_STATUSES
from ..server_identity import NoServerAnswersError, ServerIdentityError, verify_before_sending_key
from .errors import LOCAL_SERVER_HINT, ArgillaNotFoundError, ArgillaRequestError, ArgillaUnreachableError
from .rest import Connection, RestSession
from .transport import is_transient_status

# The embedded server's search engine announces in GET /api/v1/status that a record's updated_at
# moves with its responses, which makes incremental reads exact (local_argilla/search_engine.py).
UPDATED_AT_TRACKS_RESPONSES = "record_updated_at_tracks_responses"


@dataclass(frozen=True)
class ArgillaDataset:
    """A dataset as the pipeline sees it: the one representation every method takes and returns."""

    id: str
    name: str
    workspace: str
    status: str
    metadata: dict = field(default_factory=dict)

    @classmethod
    def from_api(cls, item: dict, workspace: str) -> ArgillaDataset:
        return cls(str(item["id"]), item["name"], workspace, item["status"], dict(item.get("metadata") or {}))


class ArgillaClient(RestSession):
    """An Argilla server reached with an owner's API key; connections open on first use and close with the client."""

    def __init__(self, connection: Connection, inner_transport=None, log: Callable[[str], None] | None = None):
        super().__init__(connection, inner_transport, log, before_first_request=self._refuse_an_impostor)
        self._sdk: rg.Argilla | None = None
        self._sdk_datasets: dict[str, rg.Dataset] = {}

    def _refuse_an_impostor(self) -> None:
        """Before the owner key of the embedded server leaves, the server on the port proves it is that server.

        Another process on the port (a leftover, or someone else's on a shared machine) would
        otherwise receive the key with the first request. Only the embedded server's own owner key
        is checked this way; a remote Argilla is never asked.
        """
        try:
            verify_before_sending_key(self.api_url, self.connection.api_key)
        except NoServerAnswersError as error:
            raise ArgillaUnreachableError(f"cannot reach Argilla at {self.api_url}: {LOCAL_SERVER_HINT}") from error
        except ServerIdentityError as error:
            raise ArgillaUnreachableError(str(error)) from error

    @property
    def sdk(self) -> rg.Argilla:
        """The argilla SDK's client on the same server, through the same retrying transport."""
        if self._sdk is None:
            self.check_connection()
            # The SDK's own transport retries connection errors only, without backoff: route it through ours.
            self._sdk = rg.Argilla(
                api_url=self.api_url,
                api_key=self.connection.api_key,
                timeout=int(self.connection.timeout_seconds),
                mounts={"all://": self.transport()},
            )
        return self._sdk

    def _sdk_dataset(self, dataset: ArgillaDataset) -> rg.Dataset:
        if dataset.id not in self._sdk_datasets:
            # Looked up by id, the SDK's dataset comes without its settings (a lookup by name loads them), which
            # `records.log` needs: loaded here.
            self._sdk_datasets[dataset.id] = self.sdk.datasets(id=dataset.id).get()
        return self._sdk_datasets[dataset.id]

    def check_connection(self) -> dict:
        """The current user; raises a typed ArgillaError with the URL and what to do."""
        return self.request("GET", "/api/v1/me")

    def close(self) -> None:
        super().close()
        if self._sdk is not None:
            self._sdk.http_client.close()
            self._sdk = None
            self._sdk_datasets.clear()

    # -- users, workspaces, datasets ---------------------------------------------------

    def annotator_usernames(self) -> list[str]:
        users = self.request("GET", "/api/v1/users")["items"]
        return sorted(user["username"] for user in users if user["role"] == "annotator")

    def user_ids_by_name(self) -> dict[str, str]:
        return {user["username"]: user["id"] for user in self.request("GET", "/api/v1/users")["items"]}

    def datasets_named(self, dataset_name: str) -> dict[str, ArgillaDataset]:
        """Every dataset with this name, by workspace name (one per annotator in our layout)."""
        workspaces = {w["id"]: w["name"] for w in self.request("GET", "/api/v1/me/workspaces")["items"]}
        return {
            workspaces[item["workspace_id"]]: ArgillaDataset.from_api(item, workspaces[item["workspace_id"]])
            for item in self.request("GET", "/api/v1/me/datasets")["items"]
            if item["name"] == dataset_name and item["workspace_id"] in workspaces
        }

    def delete_dataset(self, dataset: ArgillaDataset) -> None:
        self.request("DELETE", f"/api/v1/datasets/{dataset.id}")
        self._sdk_datasets.pop(dataset.id, None)

    def ensure_annotator_dataset(
        self,
        annotator: str,
        dataset_name: str,
        settings_factory: Callable[[], rg.Settings],
        metadata: dict | None = None,
    ) -> ArgillaDataset:
        """The annotator's own workspace (named after them) with the dataset in it, created if missing (with `metadata`).

        Settings come from a factory because argilla's field classes bind to the default client
        when constructed: they must be built after ours exists.
        """
        client = self.sdk
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
                return self._described(dataset, annotator)
            raise ArgillaNotFoundError(f"Argilla at {self.api_url} has no user {annotator!r}: create the account first")
        workspace = workspace or rg.Workspace(name=annotator, client=client).create()
        if annotator not in {member.username for member in workspace.users}:
            workspace.add_user(user)
        if dataset is None:
            created = ArgillaDataset.from_api(
                self._create_dataset(dataset_name, str(workspace.id), settings_factory(), metadata), annotator
            )
            if metadata and any(created.metadata.get(key) != value for key, value in metadata.items()):
                self.stamp_dataset(created, metadata)  # a server that takes no metadata at creation
                created = self._dataset(created.id, annotator)
            return created
        return self._described(dataset, annotator)

    def _create_dataset(self, name: str, workspace_id: str, settings: rg.Settings, metadata: dict | None) -> dict:
        """Create and publish a dataset with these settings; returns the published dataset as the server answers it.

        The requests `rg.Dataset(...).create()` sends, with the bodies its models give, minus what it reads back
        and updates afterwards: the dataset (with its guidelines, distribution and `metadata`, which the SDK
        PATCHes after creating it), each field, question, vector setting and metadata property, then publish.
        For the curation dataset that is 18 requests instead of 29 (the SDK reads the dataset back four times,
        and its settings once), and dataset creation is most of a small project's push. A creation cut
        short leaves a draft, which the next call deletes and starts over (above), as the SDK's rollback would.
        """
        settings.validate()
        # The SDK's own model, which normalizes as the SDK does (it strips the guidelines' surrounding whitespace).
        body = DatasetModel(
            name=name,
            workspace_id=workspace_id,
            guidelines=settings.guidelines,
            allow_extra_metadata=settings.allow_extra_metadata,
            distribution=settings.distribution._api_model(),
        ).model_dump(mode="json", exclude_unset=True)
        dataset_id = self.request(
            "POST", "/api/v1/datasets", json={**body, **({"metadata": metadata} if metadata else {})}
        )["id"]
        for kind, items in (
            ("fields", settings.fields),
            ("questions", settings.questions),
            ("vectors-settings", settings.vectors),
            ("metadata-properties", settings.metadata),
        ):
            for item in items:
                self._create_setting(dataset_id, kind, item)
        return self.request("PUT", f"/api/v1/datasets/{dataset_id}/publish")

    def _described(self, dataset: rg.Dataset, workspace: str) -> ArgillaDataset:
        self._sdk_datasets[str(dataset.id)] = dataset
        return self._dataset(str(dataset.id), workspace)

    def _dataset(self, dataset_id: str, workspace: str) -> ArgillaDataset:
        return ArgillaDataset.from_api(self.request("GET", f"/api/v1/datasets/{dataset_id}"), workspace)

    def _create_setting(self, dataset_id: str, kind: str, setting) -> None:
        """POST a field, question, vector setting or metadata property with the body the SDK's own model gives it."""
        self.request(
            "POST",
            f"/api/v1/datasets/{dataset_id}/{kind}",
            json={**setting.api_model().model_dump(mode="json"), "dataset_id": dataset_id},
        )

    def stamp_dataset(self, dataset: ArgillaDataset, stamp: dict) -> None:
        """Merge these keys into the dataset's Argilla metadata (where a project records its source), if they differ."""
        current = self.request("GET", f"/api/v1/datasets/{dataset.id}").get("metadata") or {}
        if all(current.get(key) == value for key, value in stamp.items()):
            return
        if current:
            # argilla-server 2.8 merges a PATCHed dict into the stored one in place, so SQLAlchemy sees no
            # change and a new value for an existing key is silently dropped; cleared first, it is stored.
            self.request("PATCH", f"/api/v1/datasets/{dataset.id}", json={"metadata": None})
        self.request("PATCH", f"/api/v1/datasets/{dataset.id}", json={"metadata": {**current, **stamp}})

    def field_names(self, dataset: ArgillaDataset) -> set[str]:
        return {item["name"] for item in self.request("GET", f"/api/v1/datasets/{dataset.id}/fields")["items"]}

    def settings_as_pushed(self, dataset: ArgillaDataset, metadata_properties: list[str]) -> bool:
        """Whether the dataset is as a push leaves it: text fields shown as plain text (they hold display copies), extra
        metadata allowed (the display marker) and these metadata properties declared.

        Three reads, so that a shard with nothing to push skips the SDK's lookups and updates.
        """
        if not self.request("GET", f"/api/v1/datasets/{dataset.id}").get("allow_extra_metadata"):
            return False
        if self.markdown_fields(dataset):
            return False
        declared = self.request("GET", f"/api/v1/me/datasets/{dataset.id}/metadata-properties")["items"]
        return set(metadata_properties) <= {item["name"] for item in declared}

    def ensure_metadata_properties(self, dataset: ArgillaDataset, properties: list) -> list[str]:
        """Add the metadata properties a dataset lacks (one created before they existed); returns the names added.

        Argilla allows new metadata properties on a dataset that already has records and answers,
        and rejects records carrying metadata a dataset does not declare.
        """
        declared = self.request("GET", f"/api/v1/me/datasets/{dataset.id}/metadata-properties")["items"]
        existing = {item["name"] for item in declared}
        added = []
        for prop in properties:
            if prop.name not in existing:
                self._create_setting(dataset.id, "metadata-properties", prop)
                added.append(prop.name)
        if added:
            self._sdk_datasets.pop(dataset.id, None)  # an SDK copy would not know the new properties
        return added

    # -- records -----------------------------------------------------------------------

    def upsert_records(self, dataset: ArgillaDataset, records: list[rg.Record]) -> None:
        """Create or update records by their id (Argilla's external_id): re-runs never duplicate."""
        if records:
            try:
                # No larger than the push: the client warns when it has to shrink a batch itself.
                self._sdk_dataset(dataset).records.log(
                    records, batch_size=min(self.connection.log_batch_size, len(records))
                )
            except ArgillaAPIError as error:
                if not is_transient_status(error.status_code):
                    raise
                raise ArgillaUnreachableError(
                    f"Argilla at {self.api_url} kept failing ({error.status_code}) while upserting records into "
                    f"{dataset.name!r} after {self.connection.retry.max_attempts} tries; check the server's log and rerun: "
                    "records are upserted by id, so the rerun duplicates nothing"
                ) from error

    def upsert_record_items(self, dataset: ArgillaDataset, items: Iterable[dict]) -> int:
        """Create or update records by external id from the bulk API's JSON items; returns how many were sent.

        Batches of `log_batch_size` go one at a time and in order (the annotation queue lists records
        in insertion order), each retried on transient faults like every request; the next batch is
        built and encoded in a second thread while one is in flight. A batch the server applied
        whose answer was lost is sent again: it is an upsert by external id, so nothing is duplicated.
        The answer (every record written, 1.5 MB per batch) is checked, not parsed: nothing uses it. So
        the request says `Prefer: return=minimal` (RFC 7240): the embedded server then answers 204
        without building it; any other Argilla ignores the header and answers in full.
        """
        path = f"/api/v1/datasets/{dataset.id}/records/bulk"
        batches = _json_batches(items, self.connection.log_batch_size)
        sent = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode-batch") as encoder:
            upcoming = encoder.submit(next, batches, None)
            while (batch := upcoming.result()) is not None:
                upcoming = encoder.submit(next, batches, None)
                body, external_ids = batch
                try:
                    response = self.http.put(path, content=body, headers=_BULK_UPSERT_HEADERS)
                except httpx.TransportError as error:
                    # Transient faults were retried by the transport; what gets here is not worth retrying.
                    raise ArgillaUnreachableError(
                        f"cannot reach Argilla at {self.api_url} while upserting records {sent + 1} to "
                        f"{sent + len(external_ids)} into {dataset.name!r} ({type(error).__name__}): {LOCAL_SERVER_HINT}; "
                        "rerun: records are upserted by id, so the rerun duplicates nothing"
                    ) from error
                self._check_upsert(response, dataset, path, external_ids, sent)
                sent += len(external_ids)
        return sent

    def _check_upsert(
        self, response, dataset: ArgillaDataset, path: str, external_ids: list[str], sent_before: int
    ) -> None:
        if is_transient_status(response.status_code):
            raise ArgillaUnreachableError(
                f"Argilla at {self.api_url} kept failing ({response.status_code}) while upserting records into "
                f"{dataset.name!r} after {self.connection.retry.max_attempts} tries; check the server's log and rerun: "
                "records are upserted by id, so the rerun duplicates nothing"
            )
        if response.status_code == 422:
            raise ArgillaRequestError(
                f"Argilla at {self.api_url} rejected records {sent_before + 1} to {sent_before + len(external_ids)} "
                f"pushed to {dataset.name!r} (external ids {external_ids[0]} ... {external_ids[-1]}; the ones before "
                f"were stored): {response.text[:500]}",
                response.status_code,
            )
        if response.is_error:
            self.answer_of(response, "PUT", path)

    def question_ids(self, dataset: ArgillaDataset) -> dict[str, str]:
        """Question name → id: suggestions name their question by id in the bulk API."""
        questions = self.request("GET", f"/api/v1/datasets/{dataset.id}/questions")["items"]
        return {question["name"]: str(question["id"]) for question in questions}

    def iter_records(self, dataset_id: str, include: tuple[str, ...] = ("responses",)) -> Iterator[dict]:
        """Raw record models, responses included as the server stores them (discards too)."""
        offset = 0
        while True:
            page = self.request(
                "GET",
                f"/api/v1/datasets/{dataset_id}/records",
                params={"include": list(include), "offset": offset, "limit": self.connection.record_page_size},
            )["items"]
            yield from page
            if len(page) < self.connection.record_page_size:
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
        if not (response.json().get("search_engine") or {}).get(UPDATED_AT_TRACKS_RESPONSES):
            return None
        now = email.utils.parsedate_to_datetime(response.headers["date"]).astimezone(datetime.UTC)
        return (now.replace(tzinfo=None) - datetime.timedelta(seconds=2)).isoformat()

    def iter_records_updated_since(self, dataset_id: str, since: str) -> Iterator[dict]:
        """Raw record models (with responses) whose updated_at is at or after `since` (the server's naive UTC)."""
        body = {
            "filters": {
                "and": [{"type": "range", "scope": {"entity": "record", "property": "updated_at"}, "ge": since}]
            }
        }
        offset = 0
        while True:
            page = self.request(
                "POST",
                f"/api/v1/datasets/{dataset_id}/records/search",
                params={"include": ["responses"], "offset": offset, "limit": self.connection.record_page_size},
                json=body,
            )["items"]
            yield from (item["record"] for item in page)
            if len(page) < self.connection.record_page_size:
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
                status: user["completed"].get(status, 0) + user["pending"].get(status, 0) for status in ANSWER_STATUSES
            }
            for user in users
        }

    def markdown_fields(self, dataset: ArgillaDataset) -> list[str]:
        """The dataset's text fields shown as markdown: Argilla 2.8 renders them as HTML (logic/inert_display)."""
        return [
            dataset_field["name"]
            for dataset_field in self.request("GET", f"/api/v1/datasets/{dataset.id}/fields")["items"]
            if dataset_field["settings"].get("type") == "text" and dataset_field["settings"].get("use_markdown")
        ]

    def show_fields_as_plain_text(self, dataset: ArgillaDataset) -> list[str]:
        """Switch markdown text fields to plain text; returns the fields switched.

        Only once every record of the dataset holds display copies: a plain text field shows its
        value as innerHTML, so a record that still held its raw text would then run its markup.
        """
        switched = self.markdown_fields(dataset)
        for dataset_field in self.request("GET", f"/api/v1/datasets/{dataset.id}/fields")["items"]:
            if dataset_field["name"] in switched:
                self.request(
                    "PATCH",
                    f"/api/v1/fields/{dataset_field['id']}",
                    json={"settings": {"type": "text", "use_markdown": False}},
                )
        return switched

    def allow_extra_metadata(self, dataset: ArgillaDataset) -> bool:
        """Let the dataset's records carry metadata it does not declare (the display marker); True if it had to change.

        Datasets made before the marker existed were created with argilla's default, which refuses it.
        """
        if self.request("GET", f"/api/v1/datasets/{dataset.id}").get("allow_extra_metadata"):
            return False
        self.request("PATCH", f"/api/v1/datasets/{dataset.id}", json={"allow_extra_metadata": True})
        return True

    # -- webhooks ------------------------------------------------------------------------

    def ensure_webhook(self, url: str, events: tuple[str, ...], description: str) -> dict:
        """The enabled webhook posting these events to `url` (created, or re-enabled and updated), with its secret.

        Webhooks with the same description but another URL (an earlier receiver port) are pointed
        at `url` rather than left to fail on every answer; one webhook per description is kept.
        """
        mine = [
            hook for hook in self.request("GET", "/api/v1/webhooks")["items"] if hook.get("description") == description
        ]
        wanted = {"url": url, "events": sorted(events), "enabled": True}
        if not mine:
            return self.request("POST", "/api/v1/webhooks", json={**wanted, "description": description})
        keep, *extra = sorted(mine, key=lambda hook: hook["url"] != url)
        for hook in extra:
            self.request("DELETE", f"/api/v1/webhooks/{hook['id']}")
        if {"url": keep["url"], "events": sorted(keep["events"]), "enabled": keep["enabled"]} != wanted:
            keep = self.request("PATCH", f"/api/v1/webhooks/{keep['id']}", json=wanted)
        return keep

    def disable_webhook(self, webhook_id: str) -> None:
        """Argilla stops posting to it (kept, with its secret, for the next start)."""
        self.request("PATCH", f"/api/v1/webhooks/{webhook_id}", json={"enabled": False})


_BULK_UPSERT_HEADERS = {"Content-Type": "application/json", "Prefer": "return=minimal"}


def _json_batches(items: Iterable[dict], size: int) -> Iterator[tuple[bytes, list[str]]]:
    """The bulk request bodies for these items, `size` records each, with the batch's external ids (for errors)."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield json.dumps({"items": batch}).encode(), [item["external_id"] for item in batch]
