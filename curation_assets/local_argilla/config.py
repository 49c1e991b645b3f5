"""Where the embedded Argilla lives and how it is reached: plain settings, no server imports."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .. import state
from ..web_security import WILDCARD_HOSTS

DEFAULT_HOST = "127.0.0.1"
PORT_ENV = "CURATION_ARGILLA_PORT"
# 6900 is Argilla's own default; $CURATION_ARGILLA_PORT moves every tool of this clone to another port at once.
DEFAULT_PORT = int(os.environ.get(PORT_ENV, "6900"))
DATA_DIR_ENV = "CURATION_ARGILLA_HOME"
SEARCH_ENGINE_NAME = "database"
# Sent with a bulk record upsert that the set-based write path (bulk_write.py) served.
BULK_WRITE_PATH_HEADER = "X-Curation-Bulk-Write"


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
