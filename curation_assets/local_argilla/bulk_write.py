"""A set-based write path for argilla-server's bulk record upsert (`PUT /api/v1/datasets/{id}/records/bulk`).

The server's own path (`argilla_server/bulk/records_bulk.py`) validates every record, and
every suggestion and metadata value in it, against settings parsed again for each value,
then writes through the ORM unit of work (one object per record and per suggestion, loaded
back with eager loads before answering). This path does the same work per batch: settings
parsed once per request, records looked up with one query, new records inserted with one
executemany, changed records updated with one executemany per set of changed columns,
suggestions upserted with one executemany, the overlap distribution's status recomputed for
stored records with one query, one transaction; the answer is built from what was written
and serialized as the server's response schema serializes it, with no ORM object on the way;
a request that says `Prefer: return=minimal` (the pipeline's push) gets 204 and no answer.

What it writes is what the server writes, row for row (the differential test in
`curation_assets_tests/local_argilla/test_bulk_write.py` compares both): record ids are new
uuid4s, `inserted_at == updated_at` for new records, `updated_at` moves only when fields or
metadata really change (or the status does); suggestions are upserted per (record,
question) keeping their id and `inserted_at`, with the server's timestamps, quirks included
(a new suggestion's `updated_at` is the `inserted_at` of the first row of its statement).
Validation runs the server's own validators in the server's order and rejects with the
same messages (422).

A request takes the server's own path, unchanged, whenever this one does not cover it:
records addressed by `id`, records carrying responses (which need users checked, dataset
users and record statuses) or vectors, an enabled webhook for record events (the server
builds an event per record), a database other than SQLite, or a search engine other than the embedded one
(this path does not call `index_records`, which is a no-op only there).
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from argilla_server.api.handlers.v1.datasets import records_bulk as records_bulk_handlers
from argilla_server.api.schemas.v1.records import RecordUpsert
from argilla_server.api.schemas.v1.records_bulk import RecordsBulkUpsert
from argilla_server.api.schemas.v1.responses import Response as ResponseSchema
from argilla_server.api.schemas.v1.suggestions import Suggestion as SuggestionSchema
from argilla_server.bulk.records_bulk import UpsertRecordsBulk
from argilla_server.contexts.webhooks import list_enabled_webhooks
from argilla_server.enums import DatasetDistributionStrategy, RecordStatus, ResponseStatus
from argilla_server.errors.future import UnprocessableEntityError
from argilla_server.models import Dataset, Record, Response, Suggestion, Vector
from argilla_server.validators.records import RecordValidatorBase
from argilla_server.validators.suggestions import SuggestionCreateValidator
from fastapi.encoders import jsonable_encoder
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import bindparam, func, insert, literal_column, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from starlette.responses import Response as HttpResponse

from .config import BULK_WRITE_PATH_HEADER
from .search_engine import DatabaseSearchEngine

RECORDS = Record.__table__
SUGGESTIONS = Suggestion.__table__
RESPONSES = Response.__table__
VECTORS = Vector.__table__

_ANSWER = TypeAdapter(Any)
_SUGGESTION_FIELDS = list(SuggestionSchema.model_fields)

# SQLite has one writer: requests taking this path write one after the other, and the lookup of
# existing records happens under the same lock, so that two requests logging the same external
# ids cannot both decide to insert.
_WRITE_LOCK = asyncio.Lock()

# RFC 7240's `Prefer: return=minimal`: the client does not read the answer (every record written,
# 1.5 MB per batch of 500 pipeline records, a third of this path's time to build and send).
MINIMAL_ANSWER_PREFERENCE = "return=minimal"
_minimal_answer_preferred: ContextVar[bool] = ContextVar("minimal_answer_preferred", default=False)


def install() -> None:
    """Serve the bulk upsert endpoint with the set-based path (the handler looks the class up at call time)."""
    import argilla_server
    from starlette.middleware import Middleware

    records_bulk_handlers.UpsertRecordsBulk = SetBasedUpsertRecordsBulk
    argilla_server.app.user_middleware.append(Middleware(MinimalAnswerPreference))
    argilla_server.app.middleware_stack = None  # Starlette builds the stack on the first request


class MinimalAnswerPreference:
    """Notes a request's `Prefer: return=minimal` where the bulk path can read it (the handler never sees the request).

    Any other server ignores the header, as RFC 7240 lets it, and answers in full: a client may send
    it to any Argilla. This path honours it only where it writes itself, answering 204 with
    `Preference-Applied`; the server's own path always answers in full.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "PUT" or not scope["path"].endswith("/records/bulk"):
            await self.app(scope, receive, send)
            return
        preferences = b",".join(value for name, value in scope["headers"] if name == b"prefer")
        preferred = MINIMAL_ANSWER_PREFERENCE in {part.strip() for part in preferences.decode("latin-1").split(",")}
        token = _minimal_answer_preferred.set(preferred)
        try:
            await self.app(scope, receive, send)
        finally:
            _minimal_answer_preferred.reset(token)


class SetBasedUpsertRecordsBulk(UpsertRecordsBulk):
    async def upsert_records_bulk(self, dataset: Dataset, bulk_upsert: RecordsBulkUpsert, raise_on_error: bool = True):
        if not raise_on_error or await self._needs_servers_own_path(dataset, bulk_upsert.items):
            return await super().upsert_records_bulk(dataset, bulk_upsert, raise_on_error)
        minimal = _minimal_answer_preferred.get()
        async with _WRITE_LOCK:
            answer = await _BatchUpsert(self._db, dataset).run(bulk_upsert.items, answer=not minimal)
        # A Response is sent as it is: FastAPI skips its response-model round trip for it.
        if minimal:
            return HttpResponse(
                status_code=204,
                headers={BULK_WRITE_PATH_HEADER: "set-based", "Preference-Applied": MINIMAL_ANSWER_PREFERENCE},
            )
        return HttpResponse(
            content=answer, media_type="application/json", headers={BULK_WRITE_PATH_HEADER: "set-based"}
        )

    async def _needs_servers_own_path(self, dataset: Dataset, items: list[RecordUpsert]) -> bool:
        if self._db.bind.dialect.name != "sqlite" or not isinstance(self._search_engine, DatabaseSearchEngine):
            return True
        if dataset.distribution_strategy != DatasetDistributionStrategy.overlap:
            return True
        if any(item.id is not None or item.responses or item.vectors for item in items):
            return True
        # A webhook for record events gets one per record, which the server's path builds; one for answers
        # (the pipeline's receiver listens to response.* only) gets nothing from a batch without responses.
        enabled = await list_enabled_webhooks(self._db)
        return any(str(event).startswith("record.") for webhook in enabled for event in webhook.events)


@dataclass
class _Row:
    """A record of the batch as it will be stored, and what the answer needs of it."""

    id: UUID
    external_id: str | None
    fields: dict
    metadata: dict | None
    status: RecordStatus
    inserted_at: datetime | None = None
    updated_at: datetime | None = None
    is_new: bool = True
    changes: dict = field(default_factory=dict)
    suggestions: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class _FieldSettings:
    name: str
    required: bool
    is_text: bool
    is_image: bool
    is_chat: bool
    is_custom: bool


class _DatasetFields:
    """What the server's field validators read of a dataset, read through the ORM once per request, not per record."""

    def __init__(self, dataset: Dataset):
        self.fields = [
            _FieldSettings(field.name, field.required, field.is_text, field.is_image, field.is_chat, field.is_custom)
            for field in dataset.fields
        ]


class _RecordFields:
    """What the suggestion validators read of a record (span questions check offsets against its fields)."""

    def __init__(self, fields: Any):
        self.fields = fields


class _BatchUpsert:
    def __init__(self, db, dataset: Dataset):
        self._db = db
        self._dataset = dataset
        self._fields = _DatasetFields(dataset)
        self._questions = {question.id: question for question in dataset.questions}
        self._metadata_properties = {prop.name: prop for prop in dataset.metadata_properties}
        # Parsed settings by question id and by metadata property name, filled as they are first needed.
        self._question_settings: dict[UUID, Any] = {}
        self._metadata_settings: dict[str, Any] = {}

    async def run(self, items: list[RecordUpsert], answer: bool = True) -> bytes:
        existing = await self._existing_records(items)
        rows = [
            self._validated_row(position, item, existing.get(item.external_id)) for position, item in enumerate(items)
        ]
        await self._update_statuses([row for row in rows if not row.is_new])
        await self._write(rows, items)
        await self._db.commit()
        return await self._answer(rows) if answer else b""

    # -- validation, in the server's order and with its messages -------------------------------

    def _validated_row(self, position: int, item: RecordUpsert, stored: dict | None) -> _Row:
        try:
            if stored is None:
                RecordValidatorBase._validate_fields(item.fields, self._fields)
                self._validate_metadata(item.metadata)
                self._validate_suggestions(item.suggestions, item.fields)
            else:
                if item.is_set("fields"):
                    RecordValidatorBase._validate_fields(item.fields, self._fields)
                self._validate_metadata(item.metadata)
                self._validate_suggestions(item.suggestions, stored["fields"])
        except Exception as error:
            raise UnprocessableEntityError(f"Record at position {position} is not valid because {error}") from error
        if stored is None:
            return _Row(uuid4(), item.external_id, _as_stored(item.fields), item.metadata, RecordStatus.pending)
        row = _Row(stored["id"], stored["external_id"], stored["fields"], stored["metadata"], stored["status"],
                   stored["inserted_at"], stored["updated_at"], is_new=False)  # fmt: skip
        # As the ORM decides whether to write: a column changes only when the new value differs.
        if item.is_set("metadata") and item.metadata != row.metadata:
            row.metadata = row.changes["metadata"] = item.metadata
        if item.is_set("fields"):
            fields = _as_stored(item.fields)
            if fields != row.fields:
                row.fields = row.changes["fields"] = fields
        if row.changes:
            row.updated_at = row.changes["updated_at"] = datetime.utcnow()
        return row

    def _validate_metadata(self, metadata: dict | None) -> None:
        """RecordValidatorBase._validate_metadata with each property's settings parsed once per request."""
        for name, value in (metadata or {}).items():
            metadata_property = self._metadata_properties.get(name)
            if metadata_property is not None and value is not None:
                if name not in self._metadata_settings:
                    self._metadata_settings[name] = metadata_property.parsed_settings
                try:
                    self._metadata_settings[name].check_metadata(value)
                except UnprocessableEntityError as error:
                    raise UnprocessableEntityError(
                        f"metadata is not valid: '{name}' metadata property validation failed because {error}"
                    ) from error
            elif metadata_property is None and not self._dataset.allow_extra_metadata:
                raise UnprocessableEntityError(
                    f"metadata is not valid: '{name}' metadata property does not exists for dataset '{self._dataset.id}' "
                    "and extra metadata is not allowed for this dataset"
                )

    def _validate_suggestions(self, suggestions, record_fields: Any) -> None:
        """RecordValidatorBase._validate_suggestions with each question's settings parsed once per request."""
        if not suggestions:
            return
        try:
            RecordValidatorBase._validate_duplicated_suggestions(suggestions)
            for suggestion in suggestions:
                settings = self._question_settings.get(suggestion.question_id)
                if settings is None:
                    question = self._questions.get(suggestion.question_id)
                    if question is None:
                        raise UnprocessableEntityError(f"question id={suggestion.question_id} does not exists")
                    settings = self._question_settings[suggestion.question_id] = question.parsed_settings
                SuggestionCreateValidator.validate(suggestion, settings, _RecordFields(record_fields))
        except (UnprocessableEntityError, ValueError, ValidationError) as error:
            raise UnprocessableEntityError(f"record does not have valid suggestions: {error}") from error

    # -- reads and writes ----------------------------------------------------------------------

    async def _existing_records(self, items: list[RecordUpsert]) -> dict[str, dict]:
        external_ids = [item.external_id for item in items if item.external_id is not None]
        if not external_ids:
            return {}
        statement = select(
            RECORDS.c.id, RECORDS.c.external_id, RECORDS.c.fields, RECORDS.c.metadata,
            RECORDS.c.status, RECORDS.c.inserted_at, RECORDS.c.updated_at,
        ).where(RECORDS.c.dataset_id == self._dataset.id, RECORDS.c.external_id.in_(external_ids))  # fmt: skip
        return {row["external_id"]: dict(row) for row in (await self._db.execute(statement)).mappings()}

    async def _update_statuses(self, rows: list[_Row]) -> None:
        """The overlap distribution's status, recomputed for records already stored, as the server does after every upsert."""
        if not rows:
            return
        submitted = dict(
            (
                await self._db.execute(
                    select(RESPONSES.c.record_id, func.count())
                    .where(
                        RESPONSES.c.record_id.in_([row.id for row in rows]),
                        RESPONSES.c.status == ResponseStatus.submitted,
                    )
                    .group_by(RESPONSES.c.record_id)
                )
            ).all()
        )
        min_submitted = self._dataset.distribution["min_submitted"]
        for row in rows:
            status = RecordStatus.completed if submitted.get(row.id, 0) >= min_submitted else RecordStatus.pending
            if status != row.status:
                # The server writes a status change in a second flush, where `updated_at` follows it.
                row.status = row.changes["status"] = status
                row.updated_at = row.changes["updated_at"] = datetime.utcnow()

    async def _write(self, rows: list[_Row], items: list[RecordUpsert]) -> None:
        new = [row for row in rows if row.is_new]
        for row in new:
            # New records get their own timestamp when written (the ORM's column default), in request order.
            row.inserted_at = row.updated_at = datetime.utcnow()
        if new:
            await self._db.execute(
                insert(RECORDS),
                [
                    {
                        "id": row.id,
                        "external_id": row.external_id,
                        "dataset_id": self._dataset.id,
                        "fields": row.fields,
                        "metadata": row.metadata,
                        "status": row.status,
                        "inserted_at": row.inserted_at,
                        "updated_at": row.updated_at,
                    }
                    for row in new
                ],  # fmt: skip
            )
        await self._update_changed([row for row in rows if row.changes])
        await self._upsert_suggestions(rows, items)

    async def _update_changed(self, rows: list[_Row]) -> None:
        by_columns: dict[tuple, list[_Row]] = {}
        for row in rows:
            by_columns.setdefault(tuple(sorted(row.changes)), []).append(row)
        for columns, group in by_columns.items():
            statement = (
                update(RECORDS)
                .where(RECORDS.c.id == bindparam("record_id"))
                .values({column: bindparam(f"new_{column}") for column in columns})
            )
            await self._db.execute(
                statement,
                [
                    {"record_id": row.id, **{f"new_{column}": row.changes[column] for column in columns}}
                    for row in group
                ],
            )

    async def _upsert_suggestions(self, rows: list[_Row], items: list[RecordUpsert]) -> None:
        """Suggestion.upsert_many's rows and timestamps, written with one executemany instead of one multi-row statement."""
        # Taken before the rows' own timestamps, as the server builds the statement before its defaults run.
        updated_on_conflict = datetime.utcnow()
        values = []
        for row, item in zip(rows, items):
            for suggestion in item.suggestions or []:
                value = {
                    **_as_written(suggestion),
                    "id": uuid4(),
                    "record_id": row.id,
                    "inserted_at": datetime.utcnow(),
                }
                row.suggestions.append(value)
                values.append(value)
        if not values:
            return
        # Upstream's `updated_at` default reads `inserted_at` from the statement's parameters, which in a
        # multi-row INSERT are the first row's.
        for value in values:
            value["updated_at"] = values[0]["inserted_at"]
        statement = sqlite_insert(SUGGESTIONS)
        statement = statement.on_conflict_do_update(
            index_elements=[SUGGESTIONS.c.record_id, SUGGESTIONS.c.question_id],
            set_={
                **{column: statement.excluded[column] for column in Suggestion.__upsertable_columns__},
                "updated_at": updated_on_conflict,
            },
        )
        await self._db.execute(statement, values)

    # -- the answer ------------------------------------------------------------------------------

    async def _answer(self, rows: list[_Row]) -> bytes:
        """The server's answer (RecordsBulk: every record with its responses, suggestions and vectors), as JSON."""
        stored_ids = [row.id for row in rows if not row.is_new]
        suggestions = await children_of(self._db, SUGGESTIONS, stored_ids)
        responses = await children_of(self._db, RESPONSES, stored_ids)
        vectors = await self._vectors_of(stored_ids)
        # Plain values in the schema's field order, serialized as pydantic serializes the schema
        # (the differential test compares the bytes' meaning with the server's own answer). Rows read
        # back are validated as the server validates its ORM objects; rows this request wrote were
        # validated on the way in.
        items = [
            {
                "id": row.id,
                "status": row.status,
                "fields": row.fields,
                "metadata": row.metadata,
                "external_id": row.external_id,
                "responses": [ResponseSchema.model_validate(response) for response in responses.get(row.id, [])],
                "suggestions": (
                    [{name: suggestion[name] for name in _SUGGESTION_FIELDS} for suggestion in row.suggestions]
                    if row.is_new
                    else [SuggestionSchema.model_validate(suggestion) for suggestion in suggestions.get(row.id, [])]
                ),
                "vectors": vectors.get(row.id, {}),
                "dataset_id": self._dataset.id,
                "inserted_at": row.inserted_at,
                "updated_at": row.updated_at,
            }
            for row in rows
        ]
        return _ANSWER.dump_json({"items": items})

    async def _vectors_of(self, record_ids: list[UUID]) -> dict[UUID, dict[str, list]]:
        if not record_ids or not self._dataset.vectors_settings:
            return {}
        names = {settings.id: settings.name for settings in self._dataset.vectors_settings}
        statement = (
            select(VECTORS.c.record_id, VECTORS.c.vector_settings_id, VECTORS.c.value)
            .where(VECTORS.c.record_id.in_(record_ids))
            .order_by(VECTORS.c.inserted_at, literal_column("vectors.rowid"))
        )
        by_record: dict[UUID, dict[str, list]] = {}
        for record_id, settings_id, value in (await self._db.execute(statement)).all():
            by_record.setdefault(record_id, {})[names[settings_id]] = value
        return by_record


async def children_of(db, table, record_ids: list[UUID]) -> dict[UUID, list[dict]]:
    """Rows of the records' suggestions or responses in the order the server's eager loads give (inserted_at)."""
    if not record_ids:
        return {}
    statement = (
        select(table)
        .where(table.c.record_id.in_(record_ids))
        .order_by(table.c.inserted_at, literal_column(f"{table.name}.rowid"))
    )
    by_record: dict[UUID, list[dict]] = {}
    for child in (await db.execute(statement)).mappings():
        by_record.setdefault(child["record_id"], []).append(dict(child))
    return by_record


def _as_written(suggestion) -> dict:
    """`suggestion.model_dump()`, which the server writes; read off directly when the value is text (model_dump is slow)."""
    if type(suggestion.value) is str:
        return {"question_id": suggestion.question_id, "type": suggestion.type, "value": suggestion.value,
                "agent": suggestion.agent, "score": suggestion.score}  # fmt: skip
    return suggestion.model_dump()


def _as_stored(fields: dict | None) -> Any:
    """The server stores `jsonable_encoder(fields)`; text fields (the common case) are already that."""
    if isinstance(fields, dict) and all(value is None or type(value) is str for value in fields.values()):
        return dict(fields)
    return jsonable_encoder(fields)
