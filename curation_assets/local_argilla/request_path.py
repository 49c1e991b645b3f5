"""Speedups for the requests an annotator makes per record: the queue search and the submit.

Measured with `bench/load.py tight` (8 annotators in a loop: read the next pending record with
limit 1, submit it) and py-spy on the server. Per loop the server ran 48 SQL statements through
the async ORM (19 for the read, 29 for the submit), and that Python, on the server's one event
loop, was what the annotators queued for. Each speedup here removes statements or work whose
result nobody reads, and leaves every answer as it was; each is switchable in runtime.SPEEDUPS.
"""

from __future__ import annotations

import time
from typing import Any

# Keys in a request's database session info.
_USERS_BY_USERNAME = "curation_assets.users_by_username"
_MEMBERSHIPS = "curation_assets.workspace_memberships"

# The pending queue's index: records of a dataset by status, in insertion order (rowid breaks ties, as the
# search engine's order does). Not argilla-server's: created by this runtime, so it carries our prefix.
QUEUE_INDEX_NAME = "curation_ix_records_dataset_id_status_inserted_at"


def _forget_on_change(session_info_keys: tuple[str, ...]) -> None:
    """Drop what a session remembered as soon as it writes, commits or rolls back.

    What is remembered holds within one request's reads: a request that changes a user or a
    membership and reads it again sees the change, as it did before.
    """
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    def forget(session, *_args) -> None:
        for key in session_info_keys:
            session.info.pop(key, None)

    for name in ("after_flush", "after_commit", "after_rollback", "after_soft_rollback"):
        event.listen(Session, name, forget)

    @event.listens_for(Session, "do_orm_execute")
    def forget_before_writes(orm_execute_state) -> None:
        if not orm_execute_state.is_select:
            forget(orm_execute_state.session)


def authenticate_with_one_user_lookup() -> None:
    """Load the signed-in user once per request, not twice.

    Every request authenticates in two steps that each load the user with their workspaces
    (two queries each): the bearer-token (or API-key) backend, then `get_current_user`, which
    loads the same user again by username in the same database session. The second lookup now
    gets the user the first one loaded. Every request still reads the user from the database, so
    a password change, a new API key, a role change or a deleted account takes effect on the
    next request, as before.
    """
    from argilla_server.contexts import accounts

    by_username = accounts.get_user_by_username
    by_api_key = accounts.get_user_by_api_key

    async def get_user_by_username(db, username: str):
        remembered = db.info.get(_USERS_BY_USERNAME, {})
        if username in remembered:
            return remembered[username]
        user = await by_username(db, username)
        db.info.setdefault(_USERS_BY_USERNAME, {})[username] = user
        return user

    async def get_user_by_api_key(db, api_key: str):
        user = await by_api_key(db, api_key)
        if user is not None:
            db.info.setdefault(_USERS_BY_USERNAME, {})[user.username] = user
        return user

    accounts.get_user_by_username = get_user_by_username
    accounts.get_user_by_api_key = get_user_by_api_key
    _forget_on_change((_USERS_BY_USERNAME,))


def check_membership_once_per_request() -> None:
    """Ask whether the user belongs to a workspace once per request, not once per metadata value.

    The annotator's queue search filters each record's metadata by the user's rights, one policy
    check per metadata value, and each check queried `workspaces_users` again: 8 queries for one
    record with 8 metadata values, 80 for the UI's page of 10. The answer for one user and one
    workspace is the same within a request's reads.
    """
    from argilla_server.models import User

    is_member = User.is_member

    async def is_member_once(user, workspace_id) -> bool:
        session = user.current_async_session
        if session is None:
            return await is_member(user, workspace_id)
        memberships = session.info.setdefault(_MEMBERSHIPS, {})
        key = (user.id, workspace_id)
        if key not in memberships:
            memberships[key] = await is_member(user, workspace_id)
        return memberships[key]

    User.is_member = is_member_once
    _forget_on_change((_MEMBERSHIPS,))


def skip_response_events_without_webhooks() -> None:
    """Build an answer's webhook event only when some enabled webhook listens to that event.

    For every answer created or changed the server builds a `response.*` event (a query with
    eight eager loads, then a schema dump) before it looks for a webhook to send it to: 10 of the
    submit's 29 statements. With no webhook enabled for that event the event is not built; with
    one (the pipeline's receiver listens to `response.*`) it is built and sent as before.
    """
    from argilla_server.contexts import datasets
    from argilla_server.webhooks.v1 import responses as response_webhooks

    from .runtime import notify_only_when_a_webhook_listens

    notify_response_event_if_anyone_listens = notify_only_when_a_webhook_listens(
        response_webhooks.notify_response_event
    )

    datasets.notify_response_event_v1 = notify_response_event_if_anyone_listens


def touch_a_record_once_per_answer() -> None:
    """Skip the search engine's `updated_at` write when the server's own status update already moved the record.

    The engine moves a record's `updated_at` after every answer (the pipeline's incremental reads
    rely on it); when the answer also changed the record's status (pending -> completed, the
    usual case), the server has just written a later `updated_at` itself. Checked with one read
    instead of a third write transaction per answer. Deletions always write.
    """
    from . import search_engine

    search_engine.SKIP_TOUCH_WHEN_RECORD_MOVED = True


def index_the_pending_queue() -> None:
    """Give SQLite an index on records (dataset, status, insertion order) for the annotators' queue.

    The queue search (`response.status pending` and `record.status pending`, in insertion order)
    counts the dataset's pending records and reads the first page. Without statistics SQLite
    picked the index on status alone: every pending record of every dataset (15,000) scanned,
    checked against its dataset, then sorted. With this index it reads the dataset's pending
    records in order and stops at the page. Created once per process, on the first connection
    after the schema exists (migrations run first); `IF NOT EXISTS` makes later starts free.
    Left in place when the speedup is off: an index changes no answer.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from .runtime import _is_sqlite

    created = []

    @event.listens_for(Engine, "connect")
    def _create_queue_index(dbapi_connection, _connection_record):
        if created or not _is_sqlite(dbapi_connection):
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'records'")
            if cursor.fetchone() is None:
                return
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {QUEUE_INDEX_NAME} ON records (dataset_id, status, inserted_at)"
            )
            dbapi_connection.commit()
            created.append(True)
        finally:
            cursor.close()


def time_requests_without_base_http_middleware() -> None:
    """Serve argilla-server's `Server-Timing` header from a plain ASGI layer instead of Starlette's BaseHTTPMiddleware.

    The server adds the header with `@app.middleware("http")`, which runs every request through
    a BaseHTTPMiddleware (a task group, memory streams and a streaming response wrapper per
    request): 6% of the server's busy time in the tight loop. Same header, same value format
    (`total;dur=<milliseconds>`), measured around the same app.
    """
    import argilla_server
    from starlette.middleware import Middleware
    from starlette.middleware.base import BaseHTTPMiddleware

    app = argilla_server.app
    for position, middleware in enumerate(app.user_middleware):
        dispatch = middleware.kwargs.get("dispatch") if middleware.cls is BaseHTTPMiddleware else None
        if dispatch is not None and dispatch.__name__ == "add_server_timing_header":
            app.user_middleware[position] = Middleware(ServerTimingMiddleware)
            # Starlette builds the stack on the first request; rebuild it if it was already built.
            app.middleware_stack = None
            return


class ServerTimingMiddleware:
    """`Server-Timing: total;dur=<ms>` on every HTTP response, as argilla-server's middleware sets it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_timing(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                milliseconds = (time.perf_counter() - started) * 1000
                headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() != b"server-timing"
                ]
                headers.append((b"server-timing", f"total;dur={milliseconds}".encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_timing)


_WRITE_STATEMENT_PREFIXES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def queue_sqlite_writers_in_process() -> None:
    """Let the server's SQLite writers wait their turn on an asyncio lock instead of in SQLite's busy handler.

    SQLite takes one writer at a time. A connection that finds the write lock taken sleeps in
    SQLite's busy handler, retrying after 1, 2, 5, 10 ... up to 100 ms, however soon the lock is
    free; every answer writes three short transactions (the response, the record's status, its
    `updated_at`), so with 8 annotators in a loop the server's threads spent 0.8 s of every second
    asleep in that handler (py-spy), and answers waited for sleeps, not for work. Now a write
    statement first takes an in-process lock, held until its transaction commits or rolls back,
    and the next writer is woken the moment it is released. Same statements, same transactions.

    Waiting is bounded by SQLite's own timeout: a transaction that waited longer proceeds to
    SQLite's lock as before (and fails as before when that times out), so nothing can wait here
    for ever. Only the server's asyncio engine on SQLite is affected.
    """
    import asyncio

    from argilla_server.database import async_engine
    from argilla_server.settings import settings
    from sqlalchemy import event
    from sqlalchemy.util import await_only

    engine = async_engine.sync_engine
    if engine.dialect.name != "sqlite":
        return
    timeout = float(settings.database_sqlite_timeout)
    locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
    # Connections (by id) in a transaction holding the lock, and the lock each holds.
    holders: dict[int, asyncio.Lock] = {}

    async def take(lock: asyncio.Lock) -> bool:
        if not lock.locked():
            return await lock.acquire()
        try:
            await asyncio.wait_for(lock.acquire(), timeout)
        except TimeoutError:
            return False
        return True

    @event.listens_for(engine, "before_cursor_execute")
    def _wait_for_the_write_lock(connection, _cursor, statement, _parameters, _context, _executemany):
        dbapi_connection = connection.connection.dbapi_connection
        if id(dbapi_connection) in holders or not statement.lstrip().upper().startswith(_WRITE_STATEMENT_PREFIXES):
            return
        loop = asyncio.get_running_loop()
        lock = locks.setdefault(loop, asyncio.Lock())
        if await_only(take(lock)):
            holders[id(dbapi_connection)] = lock

    def release(connection) -> None:
        # The dialect is handed the pool's proxy, pool events the DBAPI connection itself.
        lock = holders.pop(id(getattr(connection, "dbapi_connection", connection)), None)
        if lock is not None:
            lock.release()

    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection) -> None:
        try:
            commit(dbapi_connection)
        finally:
            release(dbapi_connection)

    def do_rollback(dbapi_connection) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            release(dbapi_connection)

    dialect.do_commit, dialect.do_rollback = do_commit, do_rollback

    # Whatever ends a connection's use ends its transaction, and so its hold on the lock: its return to the pool
    # (the pool event's name is SQLAlchemy's) or its invalidation.
    @event.listens_for(engine, "checkin")  # codespell:ignore checkin
    def _release_on_return_to_the_pool(dbapi_connection, _connection_record):
        if dbapi_connection is not None:
            release(dbapi_connection)

    @event.listens_for(engine, "invalidate")
    def _release_on_invalidate(dbapi_connection, _connection_record, _exception):
        if dbapi_connection is not None:
            release(dbapi_connection)
