"""The team profile's PostgreSQL: a private cluster this clone initializes, starts and stops, or one you point at.

The private cluster listens on 127.0.0.1 only (password, scram-sha-256) and on a Unix socket in
a folder only its owner can enter (for the administration this module does itself). It holds
two databases, `argilla` (argilla-server's tables) and `dagster` (Dagster's runs, events and
schedules), owned by one role, `curation`, whose password comes from the environment or from a
0600 file beside the cluster; it is sent to PostgreSQL on psql's standard input, never on a
command line.

PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` system user
(Debian's package creates it), in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..local_argilla.config import write_private_file

BIN_ENV = "CURATION_POSTGRES_BIN"
PASSWORD_ENV = "CURATION_POSTGRES_PASSWORD"
ROLE = "curation"
DATABASES = ("argilla", "dagster")
SYSTEM_USER_WHEN_ROOT = "postgres"
# Each argilla-server worker keeps up to 25 connections (pool 15 + overflow 10, argilla-server's
# defaults), Dagster's webserver, daemon and every run a few each: 100, PostgreSQL's default, is
# reached with four workers.
MAX_CONNECTIONS = 300
START_TIMEOUT_SECONDS = 60


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL cannot be found or started; the message says what to do."""


@dataclass(frozen=True)
class DatabaseUrls:
    """Where the profile's two programs keep their data, as each one's driver wants the URL."""

    argilla: str  # postgresql+asyncpg://... (argilla-server's async engine; it derives its sync URL itself)
    # postgresql+psycopg2://... (dagster-postgres installs psycopg2; SQLAlchemy 2.1 would pick psycopg 3 for postgresql://)
    dagster: str


def postgres_bin_dir() -> Path:
    """The folder with PostgreSQL's server programs: $CURATION_POSTGRES_BIN, Debian's newest, or the PATH's."""
    configured = os.environ.get(BIN_ENV)
    candidates = [Path(configured)] if configured else []
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda path: _version_key(path.parent.name))
    candidates += reversed(debian)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PostgresUnavailableError(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed. Install them "
        "(`apt-get install postgresql`; `bash scripts/team.sh` does it when run as root), set "
        f"{BIN_ENV} to the folder that has them, or use a PostgreSQL you already run: set "
        "CURATION_ARGILLA_DATABASE_URL and CURATION_DAGSTER_DATABASE_URL (see docs/team.md)."
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


class LocalPostgres:
    """A PostgreSQL cluster in `folder` (data/, the socket, the log), served on 127.0.0.1:`port`."""

    def __init__(self, folder: Path, port: int, password: str):
        if len(password) < 16:
            raise ValueError("the PostgreSQL password must be at least 16 characters long")
        self.folder = Path(folder)
        self.port = port
        self.password = password
        self.bin_dir = postgres_bin_dir()
        # Stopped on exit only if this object started it: a cluster another command started (a second quickstart
        # beside a running one) keeps serving that command.
        self.started_here = False

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "socket"

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    @property
    def urls(self) -> DatabaseUrls:
        secret = quote(self.password, safe="")
        where = f"{ROLE}:{secret}@127.0.0.1:{self.port}"
        return DatabaseUrls(
            argilla=f"postgresql+asyncpg://{where}/argilla", dagster=f"postgresql+psycopg2://{where}/dagster"
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalPostgres:
        """Initialize the cluster if new, start it, and make sure the role and both databases exist."""
        self._prepare_folder()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initialize()
        if not self.is_running():
            self._run(
                "pg_ctl", "--pgdata", str(self.data_dir), "--log", str(self.log_path), "--wait",
                "--timeout", str(START_TIMEOUT_SECONDS),
                "--options", f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1",
                "start",
                failure=f"PostgreSQL did not start on 127.0.0.1:{self.port} (is the port taken?)",
            )  # fmt: skip
            self.started_here = True
        self._ensure_role_and_databases()
        return self

    def stop(self) -> None:
        if self.started_here and self.is_running():
            self._run("pg_ctl", "--pgdata", str(self.data_dir), "--mode", "fast", "--wait", "stop", check=False)

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", "--pgdata", str(self.data_dir), "status", check=False).returncode == 0

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    # -- steps -----------------------------------------------------------------------------

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        for path in (self.folder, self.socket_dir):
            path.chmod(0o700)
        if os.geteuid() == 0:
            system_user = pwd.getpwnam(SYSTEM_USER_WHEN_ROOT)
            for path in (self.folder, self.socket_dir):
                os.chown(path, system_user.pw_uid, system_user.pw_gid)
            blocked = [parent for parent in self.folder.parents if not os.stat(parent).st_mode & 0o001]
            if blocked:
                raise PostgresUnavailableError(
                    f"as root, PostgreSQL runs as the {SYSTEM_USER_WHEN_ROOT!r} user, who cannot reach {self.folder} "
                    f"({blocked[0]} is closed to other users): choose a folder under /var/lib/postgresql or /tmp"
                )

    def _initialize(self) -> None:
        # Trust on the socket is safe here: only the cluster's owner can enter the socket's folder.
        self._run(
            "initdb", "--pgdata", str(self.data_dir), "--username", "postgres", "--encoding", "UTF8",
            "--locale", "C", "--auth-local", "trust", "--auth-host", "scram-sha-256",
            failure="initdb failed",
        )  # fmt: skip
        with (self.data_dir / "postgresql.conf").open("a") as settings:
            settings.write(
                "\n# curation_assets team profile\n"
                f"max_connections = {MAX_CONNECTIONS}\n"
                "password_encryption = 'scram-sha-256'\n"
            )

    def _ensure_role_and_databases(self) -> None:
        """Create the role and databases if missing and set the role's password, over psql's standard input."""
        password = self.password.replace("'", "''")
        statements = [
            f"SELECT 'CREATE ROLE {ROLE} LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')\\gexec",
            f"ALTER ROLE {ROLE} WITH LOGIN PASSWORD '{password}';",
            *(
                f"SELECT 'CREATE DATABASE {name} OWNER {ROLE}' "
                f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{name}')\\gexec"
                for name in DATABASES
            ),
        ]
        self._run(
            "psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--host", str(self.socket_dir),
            "--port", str(self.port), "--username", "postgres", "--dbname", "postgres", "--file", "-",
            stdin="\n".join(statements) + "\n",
            failure="could not create the curation role and databases",
        )  # fmt: skip

    def _run(
        self, program: str, *arguments: str, stdin: str | None = None, check: bool = True, failure: str = ""
    ) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SYSTEM_USER_WHEN_ROOT, "--", *command]
        result = subprocess.run(command, input=stdin, capture_output=True, text=True, cwd="/")
        if check and result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise PostgresUnavailableError(
                f"{failure or program + ' failed'}: {result.stderr.strip() or result.stdout.strip()}"
                + (f"\n{self.log_path}:\n{log}" if log else "")
            )
        return result


def wait_until_accepting(urls: DatabaseUrls, timeout: float = 30.0) -> None:
    """Wait until PostgreSQL accepts the role's password (a restarted cluster may take a moment)."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(libpq_url(urls.dagster), connect_timeout=3).close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise PostgresUnavailableError(f"PostgreSQL refuses the connection: {error}") from error
            time.sleep(0.3)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as libpq reads it (no driver name)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def with_driver(url: str, driver: str) -> str:
    """A PostgreSQL URL with this SQLAlchemy driver named (postgresql://, postgres:// or another driver's)."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", f"postgresql+{driver}://", url)


def password_from(secret_file: Path, use_environment: bool = True) -> str:
    """$CURATION_POSTGRES_PASSWORD, else the password kept in `secret_file` (0600), generated there the first time."""
    configured = os.environ.get(PASSWORD_ENV) if use_environment else None
    if configured:
        return configured
    if secret_file.exists():
        return secret_file.read_text().strip()
    password = secrets.token_urlsafe(24)
    write_private_file(secret_file, password)
    return password
