"""The team profile's Redis: a private redis-server on a Unix socket only its owner can reach, or one you point at.

argilla-server keeps its background jobs' records in Redis (rq). The embedded server runs
those jobs in the process that took the request and, alone, keeps their records in an
in-process stand-in; with several worker processes the web UI's poll for a job's status
(`GET /api/v1/jobs/{id}`, e.g. a Hub import) can reach any of them, so the records go to a
real Redis they all share. Nothing there needs to survive a restart: no persistence.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

START_TIMEOUT_SECONDS = 20


class RedisUnavailableError(RuntimeError):
    """redis-server cannot be found or started; the message says what to do."""


class LocalRedis:
    """redis-server with its socket, settings and log in `folder`; no TCP port."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path:
        return self.folder / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def start(self) -> LocalRedis:
        program = shutil.which("redis-server")
        if program is None:
            raise RedisUnavailableError(
                "redis-server is not installed: `apt-get install redis-server` (`bash scripts/team.sh` does it when "
                "run as root), or use a Redis you already run: set CURATION_ARGILLA_REDIS_URL (see docs/team.md)"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        if self.is_answering():
            return self  # another command of this state folder started it and stops it
        settings = self.folder / "redis.conf"
        settings.write_text(
            "port 0\n"
            f"unixsocket {self.socket_path}\n"
            "unixsocketperm 700\n"
            'save ""\n'
            "appendonly no\n"
            f"dir {self.folder}\n"
            f"logfile {self.folder / 'redis.log'}\n"
        )
        self.socket_path.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [program, str(settings)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.is_answering():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.folder / "redis.log"
                raise RedisUnavailableError(
                    f"redis-server did not start: {log.read_text()[-1500:] if log.exists() else 'no log'}"
                )
            time.sleep(0.1)
        return self

    def is_answering(self) -> bool:
        import socket

        if not self.socket_path.exists():
            return False
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(2)
            try:
                probe.connect(str(self.socket_path))
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
            except OSError:
                return False

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()
