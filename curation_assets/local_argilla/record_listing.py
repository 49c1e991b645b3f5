"""A plain-rows answer for argilla-server's record listing (`GET /api/v1/datasets/{id}/records`).

The pipeline reads every annotator dataset in full through this endpoint (`ArgillaClient.iter_records`,
pages of 1,000 records with their responses). The server's handler loads each page as ORM objects,
validates every one into its `Record` schema through a getter per attribute, and FastAPI validates
and serializes the result once more for the response model: 0.12 s of server time per page of 1,000,
nearly all of it pydantic. This path runs the same query (the same statement, so SQLite returns the
same page in the same order) as plain rows, with the server's own authorization, and serializes the
answer as the schema does (`response_model_exclude_unset`: responses and suggestions only when
included; each response validated by the server's `Response` schema, as the ORM objects would be).

Requests that include vectors, and every request on a database other than SQLite (the team profile's
PostgreSQL, whose row order this path does not reproduce), take the server's own path. What this path
answers is compared, page by page and for every include, with the server's own answer on the same
records by `curation_assets_tests/local_argilla/test_bulk_write.py`
(`test_record_listing_pages_answer_the_same`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from argilla_server.api.handlers.v1.datasets import records as record_handlers
from argilla_server.api.policies.v1 import DatasetPolicy, authorize
from argilla_server.api.schemas.v1.records import RecordIncludeParam, Records
from argilla_server.api.schemas.v1.responses import Response as ResponseSchema
from argilla_server.api.schemas.v1.suggestions import Suggestion as SuggestionSchema
from argilla_server.database import get_async_db
from argilla_server.models import Dataset, Record, User
from argilla_server.security import auth
from fastapi import Depends, Query, Security
from fastapi.routing import APIRoute
from pydantic import TypeAdapter
from sqlalchemy import Text, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response as HttpResponse

from .bulk_write import RESPONSES, SUGGESTIONS, children_of
from .config import LISTING_PATH_HEADER

RECORDS = Record.__table__
LISTING_PATH = "/datasets/{dataset_id}/records"

_ANSWER = TypeAdapter(Any)
# Stored as JSON text, and answered as stored. An item's keys then come in another order than the schema's, which
# JSON leaves free (an object is unordered).
_JSON_COLUMNS = ("fields", "metadata")
_SERVERS_OWN_LISTING = record_handlers.list_dataset_records


def _with_stored_json(item: bytes, record) -> bytes:
    """The item's JSON with the record's fields and metadata spliced in as stored: SQLite holds them as JSON text,
    which parsing and serializing again only reproduced (two thirds of this path's time)."""
    stored = b"".join(b'"%s":%s,' % (name.encode(), (record[name] or "null").encode()) for name in _JSON_COLUMNS)
    return b"{" + stored + item[1:]


def install() -> None:
    """Serve the v1 API's record listing with `list_dataset_records_as_rows` (the route is rebuilt in its place)."""
    import argilla_server

    api = next(route.app for route in argilla_server.app.routes if getattr(route, "path", None) == "/api/v1")
    for position, route in enumerate(api.router.routes):
        if isinstance(route, APIRoute) and route.path == LISTING_PATH and route.methods == {"GET"}:
            api.router.routes[position] = APIRoute(
                LISTING_PATH,
                list_dataset_records_as_rows,
                methods=["GET"],
                response_model=Records,
                response_model_exclude_unset=True,
                name=route.name,
                tags=route.tags,
            )
            return
    raise RuntimeError(f"argilla-server has no GET {LISTING_PATH} route to serve")


async def list_dataset_records_as_rows(
    *,
    db: AsyncSession = Depends(get_async_db),
    dataset_id: UUID,
    include: RecordIncludeParam | None = Depends(record_handlers.parse_record_include_param),
    offset: int = 0,
    limit: int = Query(
        default=record_handlers.LIST_DATASET_RECORDS_LIMIT_DEFAULT,
        ge=1,
        le=record_handlers.LIST_DATASET_RECORDS_LIMIT_LE,
    ),
    current_user: User = Security(auth.get_current_user),
):
    if db.bind.dialect.name != "sqlite" or (include is not None and (include.with_all_vectors or include.vectors)):
        return await _SERVERS_OWN_LISTING(
            db=db, dataset_id=dataset_id, include=include, offset=offset, limit=limit, current_user=current_user
        )
    dataset = await Dataset.get_or_raise(db, dataset_id)
    await authorize(current_user, DatasetPolicy.list_records_with_all_responses(dataset))
    # The server's statement (contexts/records.py, _build_list_records_query): offset and limit, ordered by
    # inserted_at alone, so that records inserted at the same instant come in the order SQLite gives the server.
    statement = (
        select(
            *(column for column in RECORDS.c if column.name not in _JSON_COLUMNS),
            *(type_coerce(RECORDS.c[name], Text).label(name) for name in _JSON_COLUMNS),
        )
        .where(RECORDS.c.dataset_id == dataset.id)
        .offset(offset)
        .limit(limit)
        .order_by(RECORDS.c.inserted_at)
    )
    page = (await db.execute(statement)).mappings().all()
    total = await db.scalar(select(func.count(RECORDS.c.id)).where(RECORDS.c.dataset_id == dataset.id))
    record_ids = [record["id"] for record in page]
    with_responses = include is not None and include.with_responses
    with_suggestions = include is not None and include.with_suggestions
    responses = await children_of(db, RESPONSES, record_ids) if with_responses else {}
    suggestions = await children_of(db, SUGGESTIONS, record_ids) if with_suggestions else {}
    items = []
    for record in page:
        item = {"id": record["id"], "status": record["status"], "external_id": record["external_id"]}
        if with_responses:
            item["responses"] = [ResponseSchema.model_validate(row) for row in responses.get(record["id"], [])]
        if with_suggestions:
            item["suggestions"] = [SuggestionSchema.model_validate(row) for row in suggestions.get(record["id"], [])]
        item.update(dataset_id=record["dataset_id"], inserted_at=record["inserted_at"], updated_at=record["updated_at"])
        items.append(_with_stored_json(_ANSWER.dump_json(item), record))
    content = b'{"items":[' + b",".join(items) + b'],"total":' + str(total).encode() + b"}"
    # A Response is sent as it is: FastAPI skips its response-model round trip for it.
    return HttpResponse(
        content=content,
        media_type="application/json",
        headers={LISTING_PATH_HEADER: "rows"},
    )
