"""A search engine for argilla_server that answers from the server's own SQLite tables.

It keeps no index: searches, progress and metrics are SQL over records, responses,
suggestions and vectors, so it is right after a restart and with several workers, and
the index-maintenance hooks are no-ops. Semantics follow the Elasticsearch engine
(`argilla_server/search_engine/commons.py`), except that results without an explicit
sort come in insertion order instead of a per-user random order. SQLite only
(JSON via `json_extract`), which is what the embedded server runs on.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterable, List, Optional, Union
from uuid import UUID

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, RecordStatus, ResponseStatusFilter, SimilarityOrder, SortOrder
from argilla_server.models import (
    Dataset,
    Field,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.search_engine.base import (
    AndFilter,
    Filter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.sql import ColumnElement

from .config import SEARCH_ENGINE_NAME

TERMS_METRICS_SIZE = 100


def _json_path(*keys: str) -> str:
    return "$" + "".join(f'."{key}"' for key in keys)


def _json_value(column, *keys: str):
    return func.json_extract(column, _json_path(*keys))


def _as_uuid(value: Union[str, UUID]) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _as_datetime(value: Union[str, float, None]) -> Optional[datetime]:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)):
        # Elasticsearch date ranges given as numbers are epoch milliseconds.
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc).replace(tzinfo=None)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


@SearchEngine.register(engine_name=SEARCH_ENGINE_NAME)
class DatabaseSearchEngine(SearchEngine):
    """Stateless: each call opens its own short session on the server's database."""

    @classmethod
    async def new_instance(cls) -> "DatabaseSearchEngine":
        return cls()

    async def close(self):
        pass

    async def ping(self) -> bool:
        async with AsyncSessionLocal() as db:
            await db.execute(select(1))
        return True

    async def info(self) -> dict:
        return {"distribution": "sqlite", "number": "n/a", "engine": SEARCH_ENGINE_NAME}

    # The records, responses and suggestions tables are the index: nothing to maintain.
    async def create_index(self, dataset: Dataset):
        pass

    async def delete_index(self, dataset: Dataset):
        pass

    async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty):
        pass

    async def configure_index_vectors(self, vector_settings: VectorSettings):
        pass

    async def index_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def partial_record_update(self, record: Record, **update):
        pass

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def update_record_response(self, response: Response):
        pass

    async def delete_record_response(self, response: Response):
        pass

    async def update_record_suggestion(self, suggestion: Suggestion):
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion):
        pass

    # -- progress and metrics ------------------------------------------------------------

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            rows = (
                await db.execute(
                    select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
                )
            ).all()
        counts = {str(status): count for status, count in rows}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        async with AsyncSessionLocal() as db:
            rows = (
                await db.execute(
                    select(Response.status, func.count())
                    .join(Record, Record.id == Response.record_id)
                    .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
                    .group_by(Response.status)
                )
            ).all()
        counts = {str(status): count for status, count in rows}
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        value = _json_value(Record.metadata_, metadata_property.name)
        in_dataset = and_(Record.dataset_id == metadata_property.dataset_id, value.is_not(None))
        async with AsyncSessionLocal() as db:
            if metadata_property.type == MetadataPropertyType.terms:
                total = (await db.execute(select(func.count()).where(in_dataset))).scalar_one()
                rows = (
                    await db.execute(
                        select(value, func.count().label("count"))
                        .where(in_dataset)
                        .group_by(value)
                        .order_by(func.count().desc(), value)
                        .limit(TERMS_METRICS_SIZE)
                    )
                ).all()
                return TermsMetrics(
                    total=total, values=[TermsMetrics.TermCount(term=str(term), count=count) for term, count in rows]
                )
            low, high = (await db.execute(select(func.min(value), func.max(value)).where(in_dataset))).one()
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(min=low, max=high)
        return FloatMetadataMetrics(min=low, max=high)

    # -- search --------------------------------------------------------------------------

    async def search(
        self,
        dataset: Dataset,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        sort: Optional[List[Order]] = None,
        offset: int = 0,
        limit: int = 100,
        user_id: Optional[UUID] = None,
    ) -> SearchResponses:
        """Ids of matching records, a page of them, and the total; `user_id` is accepted as the UI sends it."""
        async with AsyncSessionLocal() as db:
            conditions = await self._conditions(db, dataset, query, filter)
            total = (await db.execute(select(func.count(Record.id)).where(*conditions))).scalar_one()
            statement = (
                select(Record.id)
                .where(*conditions)
                .order_by(*self._order_by(dataset, sort or []), Record.inserted_at, Record.id)
                .offset(offset)
                .limit(limit)
            )
            record_ids = (await db.execute(statement)).scalars().all()
        return SearchResponses(items=[SearchResponseItem(record_id=rid, score=None) for rid in record_ids], total=total)

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: Optional[List[float]] = None,
        record: Optional[Record] = None,
        query: Optional[Union[TextQuery, str]] = None,
        filter: Optional[Filter] = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: Optional[float] = None,
    ) -> SearchResponses:
        """Brute-force cosine similarity over the dataset's vectors, after the same filters as `search`."""
        async with AsyncSessionLocal() as db:
            if value is None and record is not None:
                value = (
                    await db.execute(
                        select(Vector.value).where(Vector.record_id == record.id, Vector.vector_settings_id == vector_settings.id)
                    )
                ).scalar_one_or_none()
            if value is None:
                return SearchResponses(items=[], total=0)
            conditions = await self._conditions(db, dataset, query, filter)
            if record is not None:
                conditions.append(Record.id != record.id)
            rows = (
                await db.execute(
                    select(Vector.record_id, Vector.value)
                    .join(Record, Record.id == Vector.record_id)
                    .where(Vector.vector_settings_id == vector_settings.id, *conditions)
                )
            ).all()
        scored = [(record_id, _cosine(value, candidate)) for record_id, candidate in rows]
        if threshold is not None:
            scored = [(rid, score) for rid, score in scored if score >= threshold]
        scored.sort(key=lambda item: item[1], reverse=order == SimilarityOrder.most_similar)
        top = scored[:max_results]
        return SearchResponses(items=[SearchResponseItem(record_id=rid, score=score) for rid, score in top], total=len(top))

    # -- translation of the query model to SQL ------------------------------------------

    async def _conditions(self, db, dataset: Dataset, query, filter) -> list[ColumnElement]:
        conditions: list[ColumnElement] = [Record.dataset_id == dataset.id]
        if query is not None:
            conditions.append(await self._text_condition(db, dataset, query))
        if filter is not None:
            conditions.append(await self._filter_condition(db, dataset, filter))
        return conditions

    async def _text_condition(self, db, dataset: Dataset, query: Union[TextQuery, str]) -> ColumnElement:
        """Every whitespace-separated term must occur, case-insensitively, in the field (or in any text field)."""
        text, field = (query, None) if isinstance(query, str) else (query.q, query.field)
        if field:
            field_names = [field]
        else:
            field_names = list((await db.execute(select(Field.name).where(Field.dataset_id == dataset.id))).scalars())
        term_conditions = []
        for term in text.split():
            pattern = f"%{_escape_like(term.lower())}%"
            term_conditions.append(
                or_(*[func.lower(_json_value(Record.fields, name)).like(pattern, escape="\\") for name in field_names])
            )
        return and_(*term_conditions) if term_conditions else Record.id.is_not(None)

    async def _filter_condition(self, db, dataset: Dataset, filter: Filter) -> ColumnElement:
        if isinstance(filter, AndFilter):
            return and_(*[await self._filter_condition(db, dataset, inner) for inner in filter.filters])
        scope = filter.scope
        if isinstance(scope, RecordFilterScope):
            return _match(_record_column(scope.property), filter, scope.property)
        if isinstance(scope, MetadataFilterScope):
            return _match(_json_value(Record.metadata_, scope.metadata_property), filter)
        if isinstance(scope, SuggestionFilterScope):
            question_id = await self._question_id(db, dataset, scope.question)
            column = {
                "value": _json_value(Suggestion.value),
                "score": _json_value(Suggestion.score),
                "agent": Suggestion.agent,
                "type": Suggestion.type,
            }[scope.property]
            return exists().where(
                Suggestion.record_id == Record.id, Suggestion.question_id == question_id, _match(column, filter)
            )
        if isinstance(scope, ResponseFilterScope):
            return self._response_condition(filter, scope)
        raise ValueError(f"cannot filter on scope {scope!r}")

    def _response_condition(self, filter: Filter, scope: ResponseFilterScope) -> ColumnElement:
        of_user = [Response.user_id == scope.user.id] if scope.user else []
        if scope.question:
            value = _json_value(Response.values, scope.question, "value")
            return exists().where(Response.record_id == Record.id, *of_user, _match(value, filter))
        if scope.property != "status" or not isinstance(filter, TermsFilter):
            raise ValueError(f"cannot filter responses on {scope!r} with {type(filter).__name__}")
        statuses = [str(value) for value in filter.values if value != ResponseStatusFilter.pending]
        alternatives = []
        if ResponseStatusFilter.pending in filter.values:
            # Pending: this user has not answered (or, with no user, nobody has).
            alternatives.append(~exists().where(Response.record_id == Record.id, *of_user))
        if statuses:
            alternatives.append(exists().where(Response.record_id == Record.id, *of_user, Response.status.in_(statuses)))
        return or_(*alternatives)

    def _order_by(self, dataset: Dataset, sort: List[Order]) -> list:
        clauses = []
        for order in sort:
            scope = order.scope
            if isinstance(scope, RecordFilterScope):
                column = _record_column(scope.property)
            elif isinstance(scope, MetadataFilterScope):
                column = _json_value(Record.metadata_, scope.metadata_property)
            elif isinstance(scope, SuggestionFilterScope):
                column = (
                    select(_json_value(Suggestion.value) if scope.property == "value" else _json_value(Suggestion.score))
                    .join(Question, Question.id == Suggestion.question_id)
                    .where(Suggestion.record_id == Record.id, Question.name == scope.question)
                    .limit(1)
                    .scalar_subquery()
                )
            elif isinstance(scope, ResponseFilterScope):
                # As Elasticsearch's nested sort with mode avg: the mean over the (user's) responses.
                target = _json_value(Response.values, scope.question, "value") if scope.question else Response.status
                of_user = [Response.user_id == scope.user.id] if scope.user else []
                column = select(func.avg(target)).where(Response.record_id == Record.id, *of_user).scalar_subquery()
            else:
                raise ValueError(f"cannot sort on scope {scope!r}")
            clauses.append(column.desc() if order.order == SortOrder.desc else column.asc())
        return clauses

    async def _question_id(self, db, dataset: Dataset, name: str) -> Optional[UUID]:
        return (
            await db.execute(select(Question.id).where(Question.dataset_id == dataset.id, Question.name == name))
        ).scalar_one_or_none()


def _record_column(property: str):
    return {
        "id": Record.id,
        "external_id": Record.external_id,
        "status": Record.status,
        "inserted_at": Record.inserted_at,
        "updated_at": Record.updated_at,
    }[property]


def _match(column, filter: Filter, record_property: Optional[str] = None) -> ColumnElement:
    convert = _converter_for(record_property)
    if isinstance(filter, TermsFilter):
        return column.in_([convert(value) for value in filter.values])
    if isinstance(filter, RangeFilter):
        bounds = []
        if filter.ge is not None:
            bounds.append(column >= convert(filter.ge))
        if filter.le is not None:
            bounds.append(column <= convert(filter.le))
        return and_(*bounds)
    raise ValueError(f"cannot apply filter {filter!r}")


def _converter_for(record_property: Optional[str]):
    if record_property == "id":
        return _as_uuid
    if record_property in ("inserted_at", "updated_at"):
        return _as_datetime
    if record_property == "status":
        return lambda value: RecordStatus(str(value))
    return lambda value: value


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cosine(left: List[float], right: List[float]) -> float:
    dot = sum(a * b for a, b in zip(left, right))
    norm = math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right))
    return dot / norm if norm else 0.0
