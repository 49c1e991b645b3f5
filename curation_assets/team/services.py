"""PostgreSQL and Redis for the team profile: private ones this clone starts and stops, or those the environment names.

    CURATION_ARGILLA_DATABASE_URL   argilla-server's database (postgresql://user:password@host:port/db)
    CURATION_DAGSTER_DATABASE_URL   Dagster's instance database (the same form)
    CURATION_ARGILLA_REDIS_URL      the Redis argilla-server's worker processes share (redis://... or unix://...)

With both database URLs set, no PostgreSQL is started; with the Redis URL set, no Redis. What
is started lives in the team state folder (`.local/team/` by default), except that a cluster
started as root lives under /var/lib/postgresql/curation-assets/ (PostgreSQL runs as the
`postgres` user there, and the state folder is closed to other users).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..local_argilla.config import DATABASE_URL_ENV, REDIS_URL_ENV
from ..local_argilla.process import free_port
from .postgres import DatabaseUrls, LocalPostgres, password_from, wait_until_accepting, with_driver
from .redis_server import LocalRedis

DAGSTER_DATABASE_URL_ENV = "CURATION_DAGSTER_DATABASE_URL"
POSTGRES_PORT_ENV = "CURATION_POSTGRES_PORT"
ROOT_CLUSTERS = Path("/var/lib/postgresql/curation-assets")


def default_postgres_folder(state_folder: Path) -> Path:
    """Where this state folder's private cluster lives (see the module's docstring for root)."""
    if os.geteuid() == 0:
        digest = hashlib.blake2b(str(state_folder.resolve()).encode(), digest_size=6).hexdigest()
        return ROOT_CLUSTERS / digest
    return state_folder / "postgres"


@dataclass
class TeamServices:
    """Start what the environment does not name; `database_urls` and `redis_url` say where everything is."""

    state_folder: Path
    postgres_folder: Path | None = None
    # False: start private services whatever the environment names (the tests must never write to a real database).
    use_environment: bool = True
    database_urls: DatabaseUrls | None = None
    redis_url: str | None = None
    started: list = field(default_factory=list)

    def start(self) -> TeamServices:
        self.state_folder.mkdir(parents=True, exist_ok=True)
        self.state_folder.chmod(0o700)
        try:
            self.database_urls = self._external_databases() or self._start_postgres()
            self.redis_url = self._environment(REDIS_URL_ENV) or self._start_redis()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def postgres(self) -> LocalPostgres | None:
        return next((service for service in self.started if isinstance(service, LocalPostgres)), None)

    def _external_databases(self) -> DatabaseUrls | None:
        argilla, dagster = self._environment(DATABASE_URL_ENV), self._environment(DAGSTER_DATABASE_URL_ENV)
        if not (argilla and dagster):
            return None
        urls = DatabaseUrls(argilla=with_driver(argilla, "asyncpg"), dagster=with_driver(dagster, "psycopg2"))
        wait_until_accepting(urls)
        return urls

    def _start_postgres(self) -> DatabaseUrls:
        folder = self.postgres_folder or default_postgres_folder(self.state_folder)
        if folder.parent == ROOT_CLUSTERS:
            # The postgres user passes through this folder of ours to its cluster. Made under curation-quickstart's
            # umask (077, everything it writes kept to its owner) it would be closed to that user: others may pass
            # (x), not list it (r); also when an earlier version made it closed.
            ROOT_CLUSTERS.mkdir(parents=True, exist_ok=True)
            ROOT_CLUSTERS.chmod(0o711)
        cluster = LocalPostgres(
            folder,
            self._postgres_port(),
            password_from(self.state_folder / "secrets" / "postgres-password", self.use_environment),
        )
        self.started.append(cluster)
        cluster.start()
        wait_until_accepting(cluster.urls)
        return cluster.urls

    def _postgres_port(self) -> int:
        """$CURATION_POSTGRES_PORT, else the port chosen on the first start (kept, so the URLs stay the same)."""
        if self._environment(POSTGRES_PORT_ENV):
            return int(self._environment(POSTGRES_PORT_ENV))
        kept = self.state_folder / "postgres-port"
        if kept.exists():
            return int(kept.read_text())
        port = free_port()
        kept.write_text(str(port))
        return port

    def _start_redis(self) -> str:
        redis = LocalRedis(self.state_folder / "redis")
        self.started.append(redis)
        return redis.start().url

    def _environment(self, variable: str) -> str | None:
        return (os.environ.get(variable) or None) if self.use_environment else None

    def stop(self) -> None:
        """Stop what this object started (in reverse order); services named by the environment are left alone."""
        while self.started:
            self.started.pop().stop()

    def __enter__(self) -> TeamServices:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def remove_private_postgres(state_folder: Path) -> None:
    """Stop and delete the private cluster of this state folder, if there is one (`curation-quickstart --fresh`)."""
    folder = default_postgres_folder(state_folder)
    if not (folder / "data" / "PG_VERSION").exists():
        return
    cluster = LocalPostgres(folder, port=0, password="unused-when-stopping")
    cluster.started_here = True
    cluster.stop()
    shutil.rmtree(folder)
