"""Where the embedded Argilla lives and how it is reached: plain settings, no server imports."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from .. import state
from ..web_security import WILDCARD_HOSTS

DEFAULT_HOST = "127.0.0.1"
PORT_ENV = "CURATION_ARGILLA_PORT"
# 6900 is Argilla's own default; $CURATION_ARGILLA_PORT moves every tool of this clone to another port at once.
DEFAULT_PORT = int(os.environ.get(PORT_ENV, "6900"))
DATA_DIR_ENV = "CURATION_ARGILLA_HOME"
# The team profile (docs/team.md): argilla-server's tables in PostgreSQL, background jobs' state in a real Redis,
# and several server processes. Secrets, so read from the environment only, never from a command line.
DATABASE_URL_ENV = "CURATION_ARGILLA_DATABASE_URL"
REDIS_URL_ENV = "CURATION_ARGILLA_REDIS_URL"
WORKERS_ENV = "CURATION_ARGILLA_WORKERS"
SEARCH_ENGINE_NAME = "database"
# Sent with a bulk record upsert that the set-based write path (bulk_write.py) served.
BULK_WRITE_PATH_HEADER = "X-Curation-Bulk-Write"
LISTING_PATH_HEADER = "X-Curation-Record-Listing"


def default_data_dir() -> Path:
    """The data dir from CURATION_ARGILLA_HOME, else `argilla/` in the clone's state folder (never shared by two clones)."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return state.argilla_data_dir()


@dataclass(frozen=True)
class LocalArgillaConfig:
    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # None: SQLite in the data dir (the embedded default). Else a postgresql+asyncpg:// URL.
    database_url: str | None = None
    # None: Redis replaced in-process (one server process only). Else a redis:// or unix:// URL.
    redis_url: str | None = None

    @classmethod
    def from_environment(cls, data_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> LocalArgillaConfig:
        """A config whose database and Redis come from CURATION_ARGILLA_DATABASE_URL and _REDIS_URL, if set."""
        database_url = os.environ.get(DATABASE_URL_ENV) or None
        if database_url is not None and not database_url.startswith("postgresql"):
            raise ValueError(
                f"{DATABASE_URL_ENV} must be a PostgreSQL URL (postgresql+asyncpg://user:password@host:port/db); "
                "leave it unset for SQLite in the data dir"
            )
        if database_url is not None:
            # argilla-server's async engine needs the asyncpg driver; a plain postgresql:// URL means that.
            database_url = re.sub(r"^postgresql(\+\w+)?://", "postgresql+asyncpg://", database_url)
        return cls(
            data_dir=data_dir,
            host=host,
            port=port,
            database_url=database_url,
            redis_url=os.environ.get(REDIS_URL_ENV) or None,
        )

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url is None

    @property
    def server_database_url(self) -> str:
        """The URL argilla-server's async engine opens."""
        return self.database_url or f"sqlite+aiosqlite:///{self.database_path}"

    @property
    def sync_database_url(self) -> str:
        """The same database for a synchronous SQLAlchemy engine: sqlite3, or psycopg2 (named: SQLAlchemy 2.1's default
        PostgreSQL driver is psycopg 3, which is not installed)."""
        if self.uses_sqlite:
            return f"sqlite:///{self.database_path}"
        return re.sub(r"^postgresql(\+\w+)?://", "postgresql+psycopg2://", self.server_database_url)

    @property
    def url(self) -> str:
        """Where tools on this machine reach the server."""
        host = "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host
        return f"http://{bracketed(host)}:{self.port}"

    @property
    def bind_url(self) -> str:
        """The address the server listens on, as given (0.0.0.0 included)."""
        return f"http://{bracketed(self.host)}:{self.port}"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "argilla.db"

    @property
    def credentials_path(self) -> Path:
        return self.data_dir / "credentials.json"

    @property
    def auth_secret_path(self) -> Path:
        return self.data_dir / "auth-secret"

    @property
    def frontend_tmp_dir(self) -> Path:
        # argilla_server copies its 14 MB web UI into a new temp dir on every import and never
        # deletes it; pointing tempfile here keeps those copies in one place we can clear.
        return self.data_dir / "frontend-tmp"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def write_private_file(path: Path, text: str) -> None:
    """Write a secret so that only the owner of the process can ever read it (0600 from creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def persistent_auth_secret(config: LocalArgillaConfig) -> str:
    """The secret that signs UI session tokens, kept across restarts so logins stay valid."""
    if config.auth_secret_path.exists():
        return config.auth_secret_path.read_text().strip()
    secret = secrets.token_hex(32)
    write_private_file(config.auth_secret_path, secret)
    return secret


def bind_refusal(host: str, port: int) -> OSError | None:
    """Why a server could not listen on host:port now, or None. Bound as uvicorn binds (SO_REUSEADDR): connections a
    previous run left in TIME_WAIT do not count as in use."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error
    return None
