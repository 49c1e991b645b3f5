"""Run the embedded Argilla as a child process: used by the Quickstart, the tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..server_identity import ServerIdentityError, server_is_embedded_argilla_of
from .bootstrap import ANNOTATORS_ENV, Credentials, read_credentials
from .config import DATABASE_URL_ENV, REDIS_URL_ENV, LocalArgillaConfig
from .interpreter import server_command

STARTUP_TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ArgillaServerProcess:
    """`curation-argilla serve` in a subprocess, with its log in the data dir."""

    def __init__(self, config: LocalArgillaConfig, annotator_names: list[str] | None = None, workers: int = 1):
        self.config = config
        self.annotator_names = annotator_names
        self.workers = workers
        self.log_path = config.data_dir / "server.log"
        self._process: subprocess.Popen | None = None
        self._log_offset = 0

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def owner_api_key(self) -> str:
        return self.credentials.owner.api_key

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def credentials(self) -> Credentials:
        credentials = read_credentials(self.config)
        if credentials is None:
            raise RuntimeError(f"the server at {self.url} has written no credentials to {self.config.data_dir}")
        return credentials

    def start(self) -> ArgillaServerProcess:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        environment = dict(os.environ)
        if self.annotator_names is not None:
            environment[ANNOTATORS_ENV] = ",".join(self.annotator_names)
        # URLs with passwords go by the environment: a command line is visible to every user of the machine.
        for variable, url in ((DATABASE_URL_ENV, self.config.database_url), (REDIS_URL_ENV, self.config.redis_url)):
            if url is None:
                environment.pop(variable, None)
            else:
                environment[variable] = url
        command = server_command(
            "--data-dir", str(self.config.data_dir),
            "--host", self.config.host,
            "--port", str(self.config.port),
            "serve",
            "--workers", str(self.workers),
            "--hide-passwords",  # stdout goes to server.log, and a log is no place for a password
        )  # fmt: skip
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        # Owner-only, like everything else in the data dir.
        with os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
            )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the embedded Argilla exited with code {self._process.returncode} before answering:\n"
                    + self.log_tail()
                )
            try:
                if self.is_answering():
                    return
            except ServerIdentityError:
                self.stop()
                raise
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the embedded Argilla did not answer at {self.url} within {STARTUP_TIMEOUT_SECONDS} s")

    def is_answering(self) -> bool:
        """The embedded Argilla of this data dir answers, proved without sending a key; False when nothing answers.

        Raises ServerIdentityError, saying why, when something else holds the port: callers then
        never send it the owner's key.
        """
        return server_is_embedded_argilla_of(self.url, self.config.data_dir, timeout=2)

    def log_of_this_start(self) -> str:
        """What the server logged since this object started it (earlier starts' lines are not repeated)."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", errors="replace")

    def accounts_created_on_start(self) -> list[str]:
        """The usernames the bootstrap created on this start (their passwords are in credentials.json, never in the log)."""
        lines = self.log_of_this_start().split("New Argilla accounts", 1)
        if len(lines) < 2:
            return []
        created = []
        for line in lines[1].splitlines()[1:]:
            parts = line.split()
            if len(parts) != 2 or parts[0] not in ("owner", "annotator"):
                break
            created.append(parts[1])
        return created

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """Stop abruptly, as a crash would (SIGKILL): no shutdown handlers run."""
        if self._process and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ArgillaServerProcess:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def start_embedded_argilla(
    data_dir: Path,
    port: int | None = None,
    annotator_names: list[str] | None = None,
    database_url: str | None = None,
    redis_url: str | None = None,
    workers: int = 1,
):
    """Start a server on a free (or given) loopback port and wait until it answers (SQLite unless a database is given)."""
    config = LocalArgillaConfig(
        data_dir=data_dir, port=port or free_port(), database_url=database_url, redis_url=redis_url
    )
    return ArgillaServerProcess(config, annotator_names, workers).start()
