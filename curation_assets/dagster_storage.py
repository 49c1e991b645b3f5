"""Dagster's SQLite storage for runs and events, with its database connections kept open between uses.

Dagster's own SQLite storages open a new engine and connection for every read and write and close it after one
transaction. The event log is the costly one, as it is used for every event a run stores and reads: closing the last
connection to a database in WAL mode checkpoints the WAL into the database file and syncs both, so each of a run's
few hundred events pays for a connect, a checkpoint and several fsyncs. This class keeps one connection per
database (the run's shard, the cross-run index) open and reuses it: each event is still its own committed
transaction, synced to the WAL as before (synchronous=FULL, SQLite's default), and SQLite checkpoints the WAL every
1,000 pages and when the connection closes.

What stays Dagster's: the schema, the files (`<base_dir>/<run id>.db` and `index.db`, the same as the default
storage's, so a DAGSTER_HOME keeps its history either way), the migrations, every query. Other processes (the
webserver, the daemon, a run's worker) open the same files with their own connections; WAL gives each transaction a
fresh snapshot, so they see each other's commits as before.

The run storage (`runs.db`: runs, their tags and statuses, daemon heartbeats) gets the same treatment with
SQLAlchemy's own pool of connections, since its callers hold no lock of Dagster's. Schedules and sensors' ticks
stay on Dagster's storage as they are.

The team profile keeps all of it in PostgreSQL (team/dagster_instance.py) and does not use this.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS, create_db_conn_string
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, StaticPool

# dagster.yaml's entries (no base_dir: the databases stay where Dagster keeps them by default, under
# $DAGSTER_HOME/history). Also the overrides of an instance built in code (the tests' and benchmarks'
# `dg.instance_for_test(..., overrides=...)`), so that they run on the storage that curation-quickstart configures.
INSTANCE_OVERRIDES = {
    "run_storage": {"module": __name__, "class": "KeptOpenSqliteRunStorage"},
    "event_log_storage": {"module": __name__, "class": "KeptOpenSqliteEventLogStorage"},
}
# A run's worker uses two databases (its shard and the index); the webserver reads the shards of the runs it shows.
# Past this many, the least recently used connection is closed.
OPEN_DATABASES = 16


def default_base_dir(*under_history: str) -> str:
    """Where Dagster's default storage keeps it: $DAGSTER_HOME/history (runs.db), history/runs (the event log)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "a kept-open SQLite storage has no base_dir and DAGSTER_HOME is not set: set one of them (the "
            "storage's config.base_dir in dagster.yaml, or the environment variable)"
        )
    return os.path.join(home, "history", *under_history)


class KeptOpenSqliteRunStorage(SqliteRunStorage):
    """SqliteRunStorage whose connections stay open in SQLAlchemy's pool instead of one engine per call."""

    def __init__(self, conn_string: str, inst_data=None):
        super().__init__(conn_string, inst_data=inst_data)
        self._engine: Engine | None = None
        self._engine_pid = os.getpid()

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> KeptOpenSqliteRunStorage:
        return cls.from_local(config_value.get("base_dir") or default_base_dir(), inst_data=inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        if self._engine is None or self._engine_pid != os.getpid():
            # The pool's default for a SQLite file: connections kept, each used by one thread at a time.
            self._engine = create_engine(self._conn_string)
            self._engine_pid = os.getpid()
        with self._engine.connect() as conn:
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        if self._engine is not None and self._engine_pid == os.getpid():
            self._engine.dispose()
        self._engine = None
        super().dispose()


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose connections stay open (up to OPEN_DATABASES of them) instead of one per event."""

    def __init__(self, base_dir: str | None = None, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        # The engines belong to the process that opened them: a forked child must not share the parent's connections.
        self._engines_pid = os.getpid()
        self._empty_shard_image: bytes | None = None  # a new run's database, as Dagster creates it
        super().__init__(base_dir or default_base_dir("runs"), inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> KeptOpenSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _open_engine(self, shard: str) -> Engine:
        """The shard's engine, opened on first use; called with self._db_lock held."""
        if self._engines_pid != os.getpid():
            self._engines = OrderedDict()  # the parent's connections: left to the parent, never closed here
            self._engines_pid = os.getpid()
        engine = self._engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                # One connection, reused: self._db_lock already lets one thread at a time use it, and the
                # webserver's threads take turns, hence check_same_thread off.
                poolclass=StaticPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            if shard not in self._initialized_dbs:
                # A run's new shard is a copy of an empty one; anything else (the index, a shard that exists) is
                # checked and created by Dagster as usual.
                if shard == INDEX_SHARD_NAME or not self._created_from_image(self.path_for_shard(shard)):
                    self._initdb(engine)
                self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_DATABASES:
            _, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    def _created_from_image(self, path: str) -> bool:
        """Create a run's shard as a copy of an empty shard's file; False if the file exists (left as it is).

        Dagster creates each new run's database by creating its tables and indexes and stamping its migration
        revision: about 0.09 s per run on this project's machines, a tenth of a no-change push. The empty
        database it makes is the same every time, so it is made once per process (by Dagster's own code, in
        a folder of its own) and copied. The copy is linked into place, which fails if the file exists: a
        database another process created meanwhile is never replaced.
        """
        if os.path.exists(path):
            return False
        if self._empty_shard_image is None:
            with tempfile.TemporaryDirectory(prefix="dagster-shard-image-") as folder:
                engine = create_engine(create_db_conn_string(folder, "empty"), poolclass=NullPool)
                self._initdb(engine)
                engine.dispose()
                self._empty_shard_image = Path(folder, "empty.db").read_bytes()
        partial = f"{path}.{os.getpid()}-{threading.get_ident()}.partial"
        Path(partial).write_bytes(self._empty_shard_image)
        try:
            os.link(partial, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(partial)
        return True

    def _close_engines(self) -> None:
        with self._db_lock:  # not while another thread uses one
            engines, self._engines = self._engines, OrderedDict()
            if self._engines_pid == os.getpid():
                for engine in engines.values():
                    engine.dispose()
            self._engines_pid = os.getpid()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._open_engine(shard)
            with engine.connect() as conn:
                changes_before = conn.connection.dbapi_connection.total_changes
                with conn.begin():
                    yield conn
                wrote = conn.connection.dbapi_connection.total_changes != changes_before
            if wrote and shard != INDEX_SHARD_NAME:
                self._wake_watchers(shard)

    def _wake_watchers(self, shard: str) -> None:
        """Touch the run's .db file, which is what the webserver watches for new events (its live run log).

        Dagster's storage wakes it by the checkpoint that closing the connection does; with the connection kept
        open, new events sit in the -wal file and the .db file would change only at the next checkpoint.
        Only writes touch it: a read touching it would wake the watcher, which reads, and so on.
        """
        try:
            os.utime(self.path_for_shard(shard))
        except FileNotFoundError:
            pass  # wiped meanwhile

    def wipe(self) -> None:
        self._close_engines()  # before the files go, so that no connection writes into deleted files
        super().wipe()

    def upgrade(self) -> None:
        self._close_engines()  # migrations run on fresh connections; ours would hold the old schema's statements
        super().upgrade()

    def dispose(self) -> None:
        self._close_engines()
        super().dispose()
