"""A search engine for argilla_server that answers every question with SQL over the server's own tables.

There is no index: searches, progress, metrics and similarity are computed from the
records, responses, suggestions and vectors tables at query time, so the answers are
right after a restart and with several workers, and the index-maintenance hooks
(`index_records`, `update_record_suggestion`, ...) have nothing to do, except that a
response change moves its record's `updated_at` (see below).

Semantics follow the Elasticsearch engine (`argilla_server/search_engine/commons.py`):
- a JSON value that is a list behaves like an Elasticsearch multi-valued field: a terms
  or range filter matches when any item matches, an ascending sort uses the smallest
  item and a descending sort the largest, and missing values sort last;
- response status "pending" means "no response from this user" (no response at all
  when the filter has no user), OR-ed with the other statuses asked for;
- response values sort by their average over the responses in scope;
- similarity scores are Elasticsearch's cosine scores, (1 + cosine) / 2.

Known differences, on purpose:
- results without an explicit sort come in insertion order (inserted_at, then the
  order rows were written), for the owner and for annotators alike; Elasticsearch ranks
  text matches by relevance and shuffles an annotator's queue with a per-user seed;
- a text query matches each term as a case-insensitive substring of a field, where
  Elasticsearch matches analyzed words (so "fox" also finds "foxes" here) and reads
  simple_query_string operators ("+", "|", "-", quotes) that are plain text here;
- `get_dataset_user_progress` counts the user's own responses by status; Elasticsearch
  counts the statuses of all responses on the records the user answered, which is the
  same when a dataset has one annotator and inflated otherwise.
- a record's `updated_at` moves whenever one of its responses is created, changed or
  deleted (argilla_server moves it only when the record's status changes), so a
  `record.updated_at` range filter finds every record whose answers changed since a
  given time: the pipeline's incremental feedback reads rely on it, and `info()` says so.

Works on SQLite (the embedded default) and PostgreSQL, the two databases argilla_server supports.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

import numpy as np
from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import FieldType, MetadataPropertyType, ResponseStatusFilter, SimilarityOrder, SortOrder
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
    FilterScope,
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
from sqlalchemy import Enum, Float, String, and_, case, cast, false, func, literal_column, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, FromClause

from .config import SEARCH_ENGINE_NAME

# Announced by info() (GET /api/v1/status): record.updated_at moves with the record's responses.
RECORD_UPDATED_AT_TRACKS_RESPONSES = "record_updated_at_tracks_responses"
# Elasticsearch's cap on terms buckets (`max_terms_size` in commons.py).
MAX_TERMS_BUCKETS = 2**14


@SearchEngine.register(engine_name=SEARCH_ENGINE_NAME)
class DatabaseSearchEngine(SearchEngine):
    """Stateless: every call opens its own short session on the server's database."""

    @classmethod
    async def new_instance(cls) -> DatabaseSearchEngine:
        return cls()

    async def close(self):
        pass

    async def ping(self) -> bool:
        async with AsyncSessionLocal() as db:
            await db.execute(select(1))
        return True

    async def info(self) -> dict:
        async with AsyncSessionLocal() as db:
            dialect = db.bind.dialect.name
        return {
            "engine": SEARCH_ENGINE_NAME,
            "distribution": dialect,
            "index": "none: SQL over the server's tables",
            RECORD_UPDATED_AT_TRACKS_RESPONSES: True,
        }

    # The server's tables are the index, so there is nothing to create, maintain or drop.

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
        await _touch_record(response.record_id, unless_touched_since=_response_changed_at(response))

    async def delete_record_response(self, response: Response):
        await _touch_record(response.record_id)

    async def update_record_suggestion(self, suggestion: Suggestion):
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion):
        pass

    # -- progress and metrics ---------------------------------------------------------------

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        """Records by their status (completed once enough submissions arrived, else pending)."""
        if dataset.is_draft:
            return {}
        statement = select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
        async with AsyncSessionLocal() as db:
            counts = {str(status): count for status, count in (await db.execute(statement)).all()}
        return {"total": sum(counts.values()), **{status: counts.get(status, 0) for status in ("completed", "pending")}}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        """The user's responses in the dataset by status; the server derives "pending" from the total."""
        if dataset.is_draft:
            return {}
        statement = (
            select(Response.status, func.count())
            .join(Record, Record.id == Response.record_id)
            .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
            .group_by(Response.status)
        )
        async with AsyncSessionLocal() as db:
            counts = {str(status): count for status, count in (await db.execute(statement)).all()}
        by_status = {status: counts.get(status, 0) for status in ("submitted", "discarded", "draft")}
        return {"total": sum(counts.values()), **by_status}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        async with AsyncSessionLocal() as db:
            items = _json_items(db, Record.metadata_[metadata_property.name])
            in_dataset = Record.dataset_id == metadata_property.dataset_id
            if metadata_property.type == MetadataPropertyType.terms:
                return await _terms_metrics(db, items, in_dataset)
            statement = select(func.min(items.number), func.max(items.number)).select_from(Record)
            low, high = (await db.execute(statement.join(items.source, true()).where(in_dataset))).one()
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(min=low, max=high)
        return FloatMetadataMetrics(min=low, max=high)

    # -- search ------------------------------------------------------------------------------

    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        sort: list[Order] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: UUID | None = None,
    ) -> SearchResponses:
        """One page of matching record ids and the total.

        `user_id` is what the annotator endpoint passes so that Elasticsearch can shuffle each
        annotator's queue; queues here keep insertion order, so it is accepted and unused.
        """
        async with AsyncSessionLocal() as db:
            records = _RecordQuery(db, dataset.id)
            conditions = await records.conditions(query, filter)
            total = (await db.execute(select(func.count()).select_from(Record).where(*conditions))).scalar_one()
            page = (
                select(Record.id).where(*conditions).order_by(*records.order_by(sort or [])).offset(offset).limit(limit)
            )
            record_ids = (await db.execute(page)).scalars().all()
        return SearchResponses(items=[SearchResponseItem(record_id=record_id) for record_id in record_ids], total=total)

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: list[float] | None = None,
        record: Record | None = None,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> SearchResponses:
        """Brute-force cosine similarity over the dataset's vectors that pass the query and filter."""
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity search")
        async with AsyncSessionLocal() as db:
            if record is not None:
                value = await _vector_of(db, record.id, vector_settings.id)
            if not value:
                raise ValueError("Cannot find a vector value to apply with provided info")
            records = _RecordQuery(db, dataset.id)
            conditions = await records.conditions(query, filter)
            if record is not None:
                conditions.append(Record.id != record.id)
            candidates = (
                await db.execute(
                    select(Vector.record_id, Vector.value)
                    .join(Record, Record.id == Vector.record_id)
                    .where(Vector.vector_settings_id == vector_settings.id, *conditions)
                    .order_by(*records.order_by([]))
                )
            ).all()
        items = _rank_by_cosine(value, candidates, order, threshold)[:max_results]
        return SearchResponses(items=items, total=len(items))


async def _touch_record(record_id: UUID, unless_touched_since: datetime | None = None) -> None:
    """Mark the record as changed: the server calls this after it committed the response change.

    `unless_touched_since`: the response's change time; a record whose `updated_at` is already
    as late was moved after that change (the server's status update, when the answer changed
    the record's status), so it needs no second write.
    """
    async with AsyncSessionLocal() as db:
        if unless_touched_since is not None:
            touched = select(Record.updated_at).where(Record.id == record_id)
            updated_at = (await db.execute(touched)).scalar_one_or_none()
            if updated_at is not None and updated_at >= unless_touched_since:
                return
        # The server's own clock and convention: naive UTC, like Dataset.last_activity_at.
        await db.execute(update(Record).where(Record.id == record_id).values(updated_at=datetime.utcnow()))
        await db.commit()


# Set by runtime's "touch-once" speedup: skip the write when the record already moved after the answer.
SKIP_TOUCH_WHEN_RECORD_MOVED = False


def _response_changed_at(response: Response) -> datetime | None:
    if not SKIP_TOUCH_WHEN_RECORD_MOVED:
        return None
    # Read without a load: a response whose timestamp is not at hand is touched, as before.
    return response.__dict__.get("updated_at")


async def _vector_of(db: AsyncSession, record_id: UUID, vector_settings_id: UUID) -> list[float] | None:
    # Read from the table: the caller's record may not have its vectors loaded in this session.
    statement = select(Vector.value).where(
        Vector.record_id == record_id, Vector.vector_settings_id == vector_settings_id
    )
    return (await db.execute(statement)).scalar_one_or_none()


def _rank_by_cosine(
    value: list[float], candidates: list, order: SimilarityOrder, threshold: float | None
) -> list[SearchResponseItem]:
    """Elasticsearch's cosine score, best first; least_similar ranks against the inverted vector, as it does."""
    if not candidates:
        return []
    query = np.asarray(value, dtype=float)
    if order == SimilarityOrder.least_similar:
        query = -query
    matrix = np.asarray([vector for _, vector in candidates], dtype=float)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(query)
    cosine = np.divide(matrix @ query, norms, out=np.zeros(len(candidates)), where=norms > 0)
    scores = (1 + cosine) / 2
    # A stable sort keeps insertion order among equal scores.
    ranked = np.argsort(-scores, kind="stable")
    return [
        SearchResponseItem(record_id=candidates[index][0], score=float(scores[index]))
        for index in ranked
        if threshold is None or scores[index] >= threshold
    ]


async def _terms_metrics(db: AsyncSession, items: _JsonItems, in_dataset: ColumnElement) -> TermsMetrics:
    """As Elasticsearch: total counts values (each list item), a term counts the records holding it."""

    def over_the_values(*columns):
        statement = select(*columns).select_from(Record).join(items.source, true())
        return statement.where(in_dataset, items.text.is_not(None))

    total = (await db.execute(over_the_values(func.count(items.text)))).scalar_one()
    record_count = func.count(Record.id.distinct())
    buckets = (
        await db.execute(
            over_the_values(items.text, record_count)
            .group_by(items.text)
            .order_by(record_count.desc(), items.text)
            .limit(MAX_TERMS_BUCKETS)
        )
    ).all()
    return TermsMetrics(total=total, values=[TermsMetrics.TermCount(term=term, count=count) for term, count in buckets])


# -- the query model in SQL ---------------------------------------------------------------------


class _RecordQuery:
    """Translates the engine's text query, filters and sorts into SQL over one dataset's records."""

    def __init__(self, db: AsyncSession, dataset_id: UUID):
        self._db = db
        self._dataset_id = dataset_id

    async def conditions(self, query: TextQuery | str | None, filter: Filter | None) -> list[ColumnElement]:
        conditions = [Record.dataset_id == self._dataset_id]
        if query is not None:
            conditions.append(await self._text_condition(query))
        if filter is not None:
            conditions.append(self._filter_condition(filter))
        return conditions

    def order_by(self, sort: list[Order]) -> list:
        """The requested keys, then insertion order, which is also the order when none is requested."""
        keys = []
        for order in sort:
            descending = order.order == SortOrder.desc
            for key in self._sort_keys(order.scope, descending):
                # Elasticsearch puts records missing the value last, whichever the direction.
                keys.append(key.desc().nulls_last() if descending else key.asc().nulls_last())
        return [*keys, Record.inserted_at, _write_order(self._db)]

    # -- text ------------------------------------------------------------------------------------

    async def _text_condition(self, query: TextQuery | str) -> ColumnElement:
        """Every whitespace-separated term occurs, ignoring case, in the field (or in some text field)."""
        if isinstance(query, str):
            query = TextQuery(q=query)
        field_names = await self._searchable_fields(query.field)
        if not field_names:
            return false()
        return and_(
            true(),
            *(
                or_(
                    *(
                        Record.fields[name].as_string().icontains(variant, autoescape=True)
                        for name in field_names
                        for variant in _as_typed_or_displayed(term)
                    )
                )
                for term in query.q.split()
            ),
        )

    async def _searchable_fields(self, only: str | None) -> list[str]:
        # Image fields hold URLs or data, not text: Elasticsearch does not index them either.
        statement = select(Field.name, Field.settings).where(Field.dataset_id == self._dataset_id)
        if only:
            statement = statement.where(Field.name == only)
        fields = (await self._db.execute(statement)).all()
        return [name for name, settings in fields if settings.get("type") != FieldType.image]

    # -- filters ---------------------------------------------------------------------------------

    def _filter_condition(self, filter: Filter) -> ColumnElement:
        if isinstance(filter, AndFilter):
            return and_(true(), *(self._filter_condition(inner) for inner in filter.filters))
        scope = filter.scope
        if isinstance(scope, RecordFilterScope):
            return _record_property_matches(scope.property, filter)
        if isinstance(scope, MetadataFilterScope):
            return self._json_matches(Record.metadata_[scope.metadata_property], filter)
        if isinstance(scope, SuggestionFilterScope):
            return self._suggestion_condition(scope, filter)
        if isinstance(scope, ResponseFilterScope):
            return self._response_condition(scope, filter)
        raise ValueError(f"Cannot process request for search scope {scope}")

    def _suggestion_condition(self, scope: SuggestionFilterScope, filter: Filter) -> ColumnElement:
        if scope.property in ("agent", "type"):
            matches = _column_matches(getattr(Suggestion, scope.property), filter)
        elif scope.property in ("value", "score"):
            matches = self._json_matches(getattr(Suggestion, scope.property), filter)
        else:
            raise ValueError(f"Cannot filter suggestions on {scope.property!r}")
        return self._suggestions_for(scope.question).where(matches).exists()

    def _suggestions_for(self, question: str):
        """The record's suggestion for the question (there is at most one)."""
        question_id = select(Question.id).where(Question.dataset_id == self._dataset_id, Question.name == question)
        return (
            select(1)
            .select_from(Suggestion)
            .where(Suggestion.record_id == Record.id, Suggestion.question_id == question_id.scalar_subquery())
        )

    def _response_condition(self, scope: ResponseFilterScope, filter: Filter) -> ColumnElement:
        if scope.question:
            value_matches = self._json_matches(_response_value(scope.question), filter)
            return _responses_in_scope(scope, value_matches).exists()
        if scope.property == "status" and isinstance(filter, TermsFilter):
            return _response_status_condition(scope, filter.values)
        raise ValueError(f"Cannot process filter scope {scope}")

    def _json_matches(self, json_value: ColumnElement, filter: Filter) -> ColumnElement:
        """Some item of the JSON value (the value itself when it is not a list) passes the filter."""
        items = _json_items(self._db, json_value)
        if isinstance(filter, TermsFilter):
            item_matches = items.text.in_([str(term) for term in filter.values])
        elif isinstance(filter, RangeFilter):
            item_matches = _in_range(items.number, _as_number(filter.ge), _as_number(filter.le))
        else:
            raise ValueError(f"Cannot process request for filter {filter}")
        return select(1).select_from(items.source).where(item_matches).exists()

    # -- sorts -----------------------------------------------------------------------------------

    def _sort_keys(self, scope: FilterScope, descending: bool) -> list[ColumnElement]:
        """Sort keys for one scope; JSON values give a numeric key, then a text key for non-numbers."""
        if isinstance(scope, RecordFilterScope):
            return [_as_text_if_enum(_record_column(scope.property))]
        if isinstance(scope, MetadataFilterScope):
            return self._json_sort_keys(Record.metadata_[scope.metadata_property], descending)
        if isinstance(scope, SuggestionFilterScope):
            return self._suggestion_sort_keys(scope, descending)
        if isinstance(scope, ResponseFilterScope):
            return self._response_sort_keys(scope, descending)
        raise ValueError(f"Cannot process request for search scope {scope}")

    def _json_sort_keys(self, json_value: ColumnElement, descending: bool) -> list[ColumnElement]:
        items = _json_items(self._db, json_value)
        return [select(key).select_from(items.source).scalar_subquery() for key in _item_sort_keys(items, descending)]

    def _suggestion_sort_keys(self, scope: SuggestionFilterScope, descending: bool) -> list[ColumnElement]:
        suggestion = self._suggestions_for(scope.question)
        if scope.property in ("agent", "type"):
            column = _as_text_if_enum(getattr(Suggestion, scope.property))
            return [suggestion.with_only_columns(column).scalar_subquery()]
        items = _json_items(self._db, getattr(Suggestion, scope.property))
        with_items = suggestion.join(items.source, true())
        return [with_items.with_only_columns(key).scalar_subquery() for key in _item_sort_keys(items, descending)]

    def _response_sort_keys(self, scope: ResponseFilterScope, descending: bool) -> list[ColumnElement]:
        """Numbers by their average over the responses in scope (Elasticsearch's nested sort mode avg).

        Labels and statuses cannot be averaged (Elasticsearch refuses), so they sort by text.
        """
        pick = func.max if descending else func.min
        if not scope.question:
            status = _as_text_if_enum(Response.status)
            return [_responses_in_scope(scope).with_only_columns(pick(status)).scalar_subquery()]
        items = _json_items(self._db, _response_value(scope.question))
        in_scope = _responses_in_scope(scope).join(items.source, true())
        return [
            in_scope.with_only_columns(func.avg(items.number)).scalar_subquery(),
            in_scope.with_only_columns(pick(items.label)).scalar_subquery(),
        ]


def _item_sort_keys(items: _JsonItems, descending: bool) -> list[ColumnElement]:
    """A key for numbers, then one for labels and terms, so that either kind of value sorts.

    As Elasticsearch sorts a multi-valued field: by its smallest item ascending, its largest descending.
    """
    pick = func.max if descending else func.min
    return [pick(items.number), pick(items.label)]


def _as_text_if_enum(column: ColumnElement) -> ColumnElement:
    # Statuses and types sort alphabetically, as Elasticsearch keywords do; PostgreSQL would
    # order its native enums by declaration.
    return cast(column, String) if isinstance(column.type, Enum) else column


def _response_value(question: str) -> ColumnElement:
    # Responses store {question: {"value": ...}}.
    return Response.values[(question, "value")]


def _responses_in_scope(scope: ResponseFilterScope, *conditions: ColumnElement):
    """The record's responses, only the scope user's when there is one."""
    statement = select(1).select_from(Response).where(Response.record_id == Record.id, *conditions)
    if scope.user is not None:
        statement = statement.where(Response.user_id == scope.user.id)
    return statement


def _response_status_condition(scope: ResponseFilterScope, statuses: list[str]) -> ColumnElement:
    """A response in scope has one of the statuses, or (for "pending") there is no response in scope."""
    answered = _known_values(Response.status, [status for status in statuses if status != ResponseStatusFilter.pending])
    alternatives = []
    if ResponseStatusFilter.pending in statuses:
        alternatives.append(~_responses_in_scope(scope).exists())
    if answered:
        alternatives.append(_responses_in_scope(scope, Response.status.in_(answered)).exists())
    return or_(false(), *alternatives)


# -- record columns -----------------------------------------------------------------------------


def _record_column(property: str) -> ColumnElement:
    columns = {
        "id": Record.id,
        "external_id": Record.external_id,
        "status": Record.status,
        "inserted_at": Record.inserted_at,
        "updated_at": Record.updated_at,
    }
    if property not in columns:
        raise ValueError(f"Cannot process request for record property {property!r}")
    return columns[property]


def _record_property_matches(property: str, filter: Filter) -> ColumnElement:
    column = _record_column(property)
    parse = _RECORD_VALUE_PARSERS.get(property, str)
    if isinstance(filter, TermsFilter):
        # A term that cannot be an id, a date or a status matches no record.
        parsed = [value for value in map(_or_none(parse), filter.values) if value is not None]
        return column.in_(_known_values(column, parsed))
    if isinstance(filter, RangeFilter):
        upper_parse = _end_of_day_for_dates if parse is _as_datetime else parse
        return _in_range(column, _apply(parse, filter.ge), _apply(upper_parse, filter.le))
    raise ValueError(f"Cannot process request for filter {filter}")


def _column_matches(column: ColumnElement, filter: Filter) -> ColumnElement:
    if isinstance(filter, TermsFilter):
        return column.in_(_known_values(column, filter.values))
    if isinstance(filter, RangeFilter):
        return _in_range(column, filter.ge, filter.le)
    raise ValueError(f"Cannot process request for filter {filter}")


def _known_values(column: ColumnElement, values: list[Any]) -> list[Any]:
    """Drops statuses and types the column cannot hold: they match nothing, and PostgreSQL would reject them."""
    if isinstance(column.type, Enum):
        return [value for value in values if value in column.type.enums]
    return values


def _in_range(column: ColumnElement, ge: Any, le: Any) -> ColumnElement:
    bounds = []
    if ge is not None:
        bounds.append(column >= ge)
    if le is not None:
        bounds.append(column <= le)
    return and_(true(), *bounds)


def _as_uuid(value: Any) -> UUID:
    return UUID(str(value))


def _as_datetime(value: Any) -> datetime:
    """A date as the server stores it (naive UTC), from ISO text or, as Elasticsearch reads numbers, epoch ms."""
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC).replace(tzinfo=None)
    parsed = datetime.fromisoformat(str(value))
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _end_of_day_for_dates(value: Any) -> datetime:
    """An upper bound: a bare date means through that day, as Elasticsearch fills in the missing time for "lte"."""
    try:
        return datetime.combine(date.fromisoformat(value), time.max)
    except (TypeError, ValueError):
        return _as_datetime(value)


def _as_number(value: Any) -> float | None:
    return None if value is None else float(value)


def _apply(parse: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else parse(value)


def _or_none(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_or_none(value: Any) -> Any:
        try:
            return parse(value)
        except ValueError:
            return None

    return parse_or_none


_RECORD_VALUE_PARSERS = {"id": _as_uuid, "inserted_at": _as_datetime, "updated_at": _as_datetime}


# -- JSON values as Elasticsearch multi-valued fields, per database ------------------------------


@dataclass(frozen=True)
class _JsonItems:
    """A JSON value as rows, to join or select from: the items of a list, or the value itself."""

    source: FromClause
    # The item as text (for terms), NULL for objects, lists and null.
    text: ColumnElement
    # The item as a number (for ranges, averages and numeric sorts), NULL unless it is a number.
    number: ColumnElement

    @property
    def label(self) -> ColumnElement:
        """The item as text unless it is a number: the sort key for labels and terms."""
        return case((self.number.is_(None), self.text))


def _json_items(db: AsyncSession, json_value: ColumnElement) -> _JsonItems:
    if db.bind.dialect.name == "postgresql":
        return _postgresql_json_items(json_value)
    return _sqlite_json_items(json_value)


def _sqlite_json_items(json_value: ColumnElement) -> _JsonItems:
    # json_each walks an array; given a scalar it yields the scalar as its single row.
    rows = func.json_each(json_value).table_valued("value", "type")
    return _JsonItems(
        source=rows,
        # json_each gives booleans as 1 and 0; their JSON spelling is what a terms filter names.
        text=case(
            (rows.c.type.in_(("text", "integer", "real")), cast(rows.c.value, String)),
            (rows.c.type.in_(("true", "false")), rows.c.type),
        ),
        number=case((rows.c.type.in_(("integer", "real")), rows.c.value)),
    )


def _postgresql_json_items(json_value: ColumnElement) -> _JsonItems:
    # json_array_elements refuses scalars, so a scalar is wrapped into a one-item array first.
    as_array = case((func.json_typeof(json_value) == "array", json_value), else_=func.json_build_array(json_value))
    rows = func.json_array_elements(as_array).table_valued("value")
    kind = func.json_typeof(rows.c.value)
    scalar_text = rows.c.value.op("#>>")(literal_column("'{}'"))
    return _JsonItems(
        source=rows,
        text=case((kind.in_(("string", "number", "boolean")), scalar_text)),
        number=case((kind == "number", cast(scalar_text, Float))),
    )


def _write_order(db: AsyncSession) -> ColumnElement:
    """Breaks ties between records inserted in the same instant: SQLite's rowid is the order they were written."""
    if db.bind.dialect.name == "sqlite":
        return literal_column("records.rowid")
    return Record.id


def _as_typed_or_displayed(term: str) -> set[str]:
    """A search term, and the same term as the pipeline's display copies hold it (`&`, `<`, `>` HTML-escaped, see
    curation_assets/logic/inert_display.py): an annotator who types `<img` finds the record that shows `<img`."""
    return {term, html.escape(term, quote=False)}
