"""Load the unmodified argilla_server in this process with SQLite, no Redis and no Elasticsearch.

Everything here must run before the first `import argilla_server`: the package reads its
settings, connects to Redis and builds the app (copying the web UI) at import time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

from . import request_path
from .config import SEARCH_ENGINE_NAME, LocalArgillaConfig, persistent_auth_secret

_LOGGER = logging.getLogger("curation_assets.local_argilla")

# Tasks started for background jobs; a strong reference keeps them from being garbage collected.
_RUNNING_JOBS: set[asyncio.Task] = set()

FINISHED_JOB_TTL_SECONDS = 24 * 3600

# Key in a request's database session info: the events enabled webhooks listened to when it started.
_EVENTS_LISTENED_TO = "curation_assets.events_enabled_webhooks_listen_to"


def configure_server_environment(config: LocalArgillaConfig) -> None:
    """Point argilla_server's settings (read from ARGILLA_* variables) at our data dir and engine."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # The database holds every user's API key: keep the folder private to its owner, and every file
    # the server creates in it (database, WAL, journal) owner-only too, also in older data dirs.
    config.data_dir.chmod(0o700)
    os.umask(0o077)
    for database_file in config.data_dir.glob(f"{config.database_path.name}*"):
        database_file.chmod(0o600)
    os.environ["ARGILLA_HOME_PATH"] = str(config.data_dir)
    os.environ["ARGILLA_DATABASE_URL"] = config.server_database_url
    os.environ["ARGILLA_SEARCH_ENGINE"] = SEARCH_ENGINE_NAME
    os.environ["ARGILLA_AUTH_SECRET_KEY"] = persistent_auth_secret(config)
    # A local tool should not phone home.
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["ARGILLA_REDIS_URL"] = config.redis_url or "redis://in-process-fake/0"


def import_argilla_server(config: LocalArgillaConfig, clear_frontend: bool = True):
    """Import argilla_server with Redis faked (unless a real one is configured) and the frontend copy under the data dir.

    Each process copies the web UI into a folder of its own: the workers of one server import
    the package at the same time, and only the process that starts them (`clear_frontend`)
    clears what earlier starts left.
    """
    configure_server_environment(config)
    if config.redis_url is None:
        _replace_redis_with_in_process_fake()
    _tune_sqlite_connections()
    if clear_frontend:
        clear_frontend_copies(config)
    with _temporary_directory_under(config.frontend_tmp_dir / f"process-{os.getpid()}"):
        import argilla_server  # noqa: F401  (builds the app and copies the web UI)
    from . import search_engine  # noqa: F401  (registers the engine named in ARGILLA_SEARCH_ENGINE)

    _run_background_jobs_in_process()
    _give_every_sqlite_request_a_connection()
    disabled = disabled_speedups()
    for name, install in SPEEDUPS.items():
        if name not in disabled:
            install()
    return argilla_server


def disabled_speedups() -> set[str]:
    """Speedups named in CURATION_ARGILLA_DISABLE_SPEEDUPS ("all" for every one): the benchmark's baseline."""
    names = {name.strip() for name in os.environ.get(DISABLE_SPEEDUPS_ENV, "").split(",") if name.strip()}
    unknown = names - set(SPEEDUPS) - {"all"}
    if unknown:
        raise ValueError(f"{DISABLE_SPEEDUPS_ENV} names unknown speedups {sorted(unknown)}; known: {sorted(SPEEDUPS)}")
    return set(SPEEDUPS) if "all" in names else names


def clear_frontend_copies(config: LocalArgillaConfig) -> None:
    shutil.rmtree(config.frontend_tmp_dir, ignore_errors=True)


@contextmanager
def _temporary_directory_under(directory):
    directory.mkdir(parents=True, exist_ok=True)
    previous = tempfile.tempdir
    tempfile.tempdir = str(directory)
    try:
        yield
    finally:
        tempfile.tempdir = previous


def _replace_redis_with_in_process_fake() -> None:
    """Serve the server's Redis needs (an rq queue and a startup ping) from fakeredis."""
    import fakeredis
    import redis

    shared_server = fakeredis.FakeServer()

    def fake_from_url(url: str, **kwargs: Any):
        return fakeredis.FakeRedis(server=shared_server)

    redis.from_url = fake_from_url
    redis.Redis.from_url = staticmethod(fake_from_url)


def _tune_sqlite_connections() -> None:
    """Give every SQLite connection WAL and relaxed fsync: one writer, readers never blocked.

    WAL lets the pipeline and the UI read while a push writes; synchronous=NORMAL is
    durable across process crashes (only an OS crash can lose the last commits).
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _set_sqlite_pragmas(dbapi_connection, _connection_record):
        if not _is_sqlite(dbapi_connection):
            return
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.execute("PRAGMA mmap_size = 268435456")
        cursor.close()


def _give_every_sqlite_request_a_connection() -> None:
    """Lift the SQLite connection pool's limit (5 + 10 overflow, argilla-server's engine as SQLAlchemy builds it).

    At 100 annotators (bench/load.py human) the server stalled with its core idle: every request waited
    30 s and failed with "QueuePool limit of size 5 overflow 10 reached, connection timed out". Opening a
    dataset, the UI asks for every metadata property's metrics at once, and each of those requests holds
    its connection while the search engine reads the metrics on a second one: 15 in flight held the whole
    pool and waited for more (local_argilla/test_connection_pool.py). A SQLite connection is a file handle
    and a thread, and one beyond the pool's five is closed as soon as its request returns it, so the number
    open follows the requests in flight. PostgreSQL keeps its configured pool.
    """
    from argilla_server.database import async_engine

    pool = async_engine.sync_engine.pool
    if async_engine.sync_engine.dialect.name == "sqlite" and hasattr(pool, "_max_overflow"):
        # QueuePool reads this on every checkout; -1 is its documented "no limit" value of max_overflow.
        pool._max_overflow = -1


def _is_sqlite(dbapi_connection) -> bool:
    # aiosqlite wraps the sqlite3 connection in an adapter; both expose a sqlite-ish module name.
    module = type(dbapi_connection).__module__
    return isinstance(dbapi_connection, sqlite3.Connection) or "sqlite" in module


def _run_background_jobs_in_process() -> None:
    """Run the server's rq jobs as tasks on its own event loop instead of in a Redis worker.

    The job is still recorded in the (fake) Redis so `GET /api/v1/jobs/{id}` reports its status.
    """
    from argilla_server.jobs import dataset_jobs, hub_jobs, webhook_jobs

    for job_function in (
        dataset_jobs.update_dataset_records_status_job,
        hub_jobs.import_dataset_from_hub_job,
        hub_jobs.export_dataset_to_hub_job,
    ):
        job_function.delay = _in_process_delay(job_function)
    webhook_jobs.notify_event_job.delay = _in_process_delay(
        webhook_jobs.notify_event_job, run=_deliver_webhook_beside_the_event_loop
    )


def _in_process_delay(job_function: Callable, run: Callable | None = None) -> Callable:
    from rq import Queue

    original_delay = job_function.delay

    def delay(*args: Any, **kwargs: Any):
        job = original_delay(*args, **kwargs)
        # It runs here: out of the queue, so that an rq worker pointed at the same (real) Redis never runs it again.
        Queue(job.origin, connection=job.connection).remove(job)
        task = asyncio.get_running_loop().create_task(_run_job(job, run or job_function, args, kwargs))
        _RUNNING_JOBS.add(task)
        task.add_done_callback(_RUNNING_JOBS.discard)
        return job

    return delay


async def _run_job(job, job_function: Callable, args: tuple, kwargs: dict) -> None:
    import httpx
    from rq.job import JobStatus

    job.set_status(JobStatus.STARTED)
    try:
        await job_function(*args, **kwargs)
    except httpx.HTTPError as error:
        # A webhook receiver that is down or refuses: one line, not a traceback per answer.
        _LOGGER.warning("background job %s (%s) failed: %s", job.id, job_function.__name__, error)
        job.set_status(JobStatus.FAILED)
    except Exception:
        _LOGGER.exception("background job %s (%s) failed", job.id, job_function.__name__)
        job.set_status(JobStatus.FAILED)
    else:
        job.set_status(JobStatus.FINISHED)
    # Its status stays readable (GET /api/v1/jobs/{id}) for a day, then the record expires, as rq's results do.
    job.cleanup(ttl=FINISHED_JOB_TTL_SECONDS, remove_from_queue=False)


async def _deliver_webhook_beside_the_event_loop(webhook_id, event: str, timestamp, data: dict) -> None:
    """argilla-server's `notify_event_job`, with its HTTP post in a thread instead of on the server's event loop.

    The job posts with a blocking httpx call (20 s timeout). Upstream, an rq worker process runs
    it; run on the server's event loop, a receiver slow to answer would stall every request of
    every annotator until it did. The post, its signature and its payload are the server's own.
    Like upstream without a worker's retries: a delivery that fails is not sent again (the
    pipeline's sensor polls anyway).
    """
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import Webhook
    from argilla_server.webhooks.v1.commons import notify_event

    async with AsyncSessionLocal() as db:
        webhook = await Webhook.get_or_raise(db, webhook_id)
    response = await asyncio.to_thread(notify_event, webhook, event, timestamp, data)
    response.raise_for_status()


def _validate_settings_with_one_adapter_each() -> None:
    """Parse question and metadata settings with a TypeAdapter built once, not once per call.

    The server's `parsed_settings` properties build a new pydantic TypeAdapter (schema
    generation for a discriminated union) on every access, and record validation reads them
    for every suggestion and metadata value of every record logged: 26% of the server's busy
    time while logging 15,000 records as shipped, 57% once webhook events are skipped
    (`bench/argilla_logging.py --profile`). Same adapter type, same validation, same result.
    """
    from argilla_server.models import database
    from pydantic import TypeAdapter

    question_settings = TypeAdapter(database.QuestionSettings)
    metadata_settings = TypeAdapter(database.MetadataPropertySettings)
    database.Question.parsed_settings = property(lambda question: question_settings.validate_python(question.settings))
    database.MetadataProperty.parsed_settings = property(
        lambda metadata_property: metadata_settings.validate_python(metadata_property.settings)
    )


def notify_only_when_a_webhook_listens(build_and_notify: Callable) -> Callable:
    """Wrap one of argilla-server's `notify_*_event(db, event, subject)` so that the event is built only when an
    enabled webhook listens to it.

    The enabled webhooks are looked up once per database session, not per event: a bulk request
    notifies up to 500 records with one session, and a webhook enabled meanwhile is seen by the
    next request.
    """
    from argilla_server.contexts import webhooks

    async def notify_if_anyone_listens(db, event, subject):
        if _EVENTS_LISTENED_TO not in db.info:
            enabled = await webhooks.list_enabled_webhooks(db)
            db.info[_EVENTS_LISTENED_TO] = {str(name) for webhook in enabled for name in webhook.events}
        if str(event) not in db.info[_EVENTS_LISTENED_TO]:
            return []
        return await build_and_notify(db, event, subject)

    return notify_if_anyone_listens


def _skip_record_events_without_webhooks() -> None:
    """Build a record's webhook event only when some enabled webhook listens to that event.

    The server builds every record event (a dataset query with five eager loads, then a
    schema dump) before it looks for a webhook to send it to; with none enabled, or only
    webhooks for answers (the pipeline's, `response.*`), that work is thrown away for every
    record logged. Behaviour for a webhook that listens to record events is unchanged.
    """
    from argilla_server.bulk import records_bulk
    from argilla_server.contexts import datasets, distribution, records
    from argilla_server.webhooks.v1 import records as record_webhooks

    notify_record_event_if_anyone_listens = notify_only_when_a_webhook_listens(record_webhooks.notify_record_event)

    for module in (records_bulk, records, datasets, distribution):
        if hasattr(module, "notify_record_event_v1"):
            module.notify_record_event_v1 = notify_record_event_if_anyone_listens


_LOOPBACK_HOSTS = {"127.0.0.1", "::1"}


def _skip_dataset_events_without_webhooks() -> None:
    """Build a dataset's webhook event (created, published, updated) only when some enabled webhook listens to it.

    Like record events, the server builds each one (a query with five eager loads, then a schema
    dump) before it looks for a webhook: creating a curation dataset with its settings and stamp
    built three, 10-40 ms of server time each, for nobody.
    """
    from argilla_server.contexts import datasets
    from argilla_server.webhooks.v1 import datasets as dataset_webhooks

    datasets.notify_dataset_event_v1 = notify_only_when_a_webhook_listens(dataset_webhooks.notify_dataset_event)


def _send_loopback_responses_uncompressed() -> None:
    """Answer clients on this machine without Brotli; remote clients still get compressed answers.

    argilla-server compresses every answer over 512 bytes with Brotli at quality 7, which costs
    the server about 25 ms per MB (a bulk upsert of 500 pipeline records answers 1.5 MB) and the
    client a decompression, to save bytes on a loopback socket where they cost nothing.
    """
    from brotli_asgi import BrotliMiddleware

    compress = BrotliMiddleware.__call__

    async def compress_unless_loopback(middleware, scope, receive, send):
        if scope["type"] == "http" and (scope.get("client") or ("",))[0] in _LOOPBACK_HOSTS:
            return await middleware.app(scope, receive, send)
        return await compress(middleware, scope, receive, send)

    BrotliMiddleware.__call__ = compress_unless_loopback


def _freeze_what_the_start_allocated() -> None:
    """Move every object alive after the import (argilla_server's app, schemas, mappers) out of the collector's sight.

    Those hundreds of thousands of objects live as long as the process, yet every full collection
    walks them again, and a push of 15,000 records triggers many: frozen, the same push took a
    quarter less time (1,408 -> 1,903 records/s side by side, `bench/argilla_logging.py`).
    Frozen objects are never collected, which is what they would be anyway.
    """
    gc.collect()
    gc.freeze()


def _checkpoint_the_write_ahead_log_less_often() -> None:
    """Let SQLite's write-ahead log reach 10,000 pages (40 MB) before it is copied into the database, not 1,000.

    A checkpoint copies the log's pages into the database file and syncs both. Pushing 15,000
    pipeline records writes about 140 MB, so at the default nearly every batch's commit ran one;
    ten times fewer write each busy index page once instead of ten times and sync ten times less
    (the push's commits: 0.65-1.0 s, now 0.36-0.58 s, `bench/argilla_logging.py`). Durability does
    not change: with synchronous=NORMAL a commit survives a crash of the process either way.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _set_checkpoint_threshold(dbapi_connection, _connection_record):
        if _is_sqlite(dbapi_connection):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA wal_autocheckpoint = 10000")
            cursor.close()


def _write_record_batches_set_based() -> None:
    """Serve the bulk record upsert with one statement per table and batch (see bulk_write.py)."""
    from . import bulk_write

    bulk_write.install()


def _list_records_as_rows() -> None:
    """Answer the record listing from plain rows, without the ORM objects and two pydantic validations (see record_listing.py)."""
    from . import record_listing

    record_listing.install()


# Changes to how the unmodified server runs in this process, each measured by bench/argilla_logging.py or
# bench/load.py tight.
SPEEDUPS: dict[str, Callable[[], None]] = {
    "settings-adapters": _validate_settings_with_one_adapter_each,
    "webhook-events": _skip_record_events_without_webhooks,
    "dataset-events": _skip_dataset_events_without_webhooks,
    "bulk-records": _write_record_batches_set_based,
    "record-listing": _list_records_as_rows,
    "loopback-compression": _send_loopback_responses_uncompressed,
    "wal-checkpoint": _checkpoint_the_write_ahead_log_less_often,
    # The annotator's per-record requests (request_path.py), measured by bench/load.py tight.
    "one-user-lookup": request_path.authenticate_with_one_user_lookup,
    "membership-once": request_path.check_membership_once_per_request,
    "response-events": request_path.skip_response_events_without_webhooks,
    "queue-index": request_path.index_the_pending_queue,
    "server-timing": request_path.time_requests_without_base_http_middleware,
    "write-queue": request_path.queue_sqlite_writers_in_process,
    "touch-once": request_path.touch_a_record_once_per_answer,
    # Last, so that what the others imported is frozen too.
    "gc-freeze": _freeze_what_the_start_allocated,
}
DISABLE_SPEEDUPS_ENV = "CURATION_ARGILLA_DISABLE_SPEEDUPS"
