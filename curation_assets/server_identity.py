"""Make the server on the port prove it is the embedded Argilla of a data dir before anyone sends it a key.

Whatever listens on the configured port gets the owner's API key, so the tools ask first: the
client sends a fresh nonce to an unauthenticated endpoint that the embedded runtime adds, and
the server answers with an HMAC of that nonce and its own port under a key derived from the data
dir's `auth-secret` (0600). Only a process that can read the secret can answer; a recorded answer
is useless for another nonce; and a relay to the real server on another port is caught because
the real server proves its own port, not the one the client dialled.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import httpx

IDENTITY_PATH = "/curation-assets/identity"
_NONCE_PATTERN = re.compile(r"[0-9a-f]{32,128}")
# The auth secret also signs session tokens (HMAC-SHA256 too): proofs are made with a key derived
# from it, so no answer of this endpoint can ever be a token signature.
_KEY_LABEL = b"curation-assets embedded argilla identity v1"


class ServerIdentityError(RuntimeError):
    """Something answers on the port, but it is not the embedded Argilla of the data dir."""


class NoServerAnswersError(ConnectionError):
    """Nothing answers at the URL."""


def identity_proof(auth_secret: str, port: int, nonce: str) -> str | None:
    """The server's answer to a nonce (None for a malformed nonce, which is never signed)."""
    if not _NONCE_PATTERN.fullmatch(nonce):
        return None
    key = hmac.new(auth_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, f"{port}:{nonce}".encode(), hashlib.sha256).hexdigest()


def server_is_embedded_argilla_of(url: str, data_dir: Path, timeout: float = 5.0) -> bool:
    """True when the server at `url` proves it serves `data_dir`; False when nothing answers.

    Raises ServerIdentityError, saying why, when something else answers. Sends no credentials.
    """
    secret_path = Path(data_dir) / "auth-secret"
    port = urlsplit(url).port or (443 if url.startswith("https:") else 80)
    nonce = secrets.token_hex(32)
    try:
        response = httpx.get(f"{url.rstrip('/')}{IDENTITY_PATH}", params={"nonce": nonce}, timeout=timeout)
    except httpx.TransportError:
        return False
    refusal = (
        f"the server answering at {url} is not the embedded Argilla of {data_dir}: {{why}}. Another program holds "
        f"port {port}: stop it, or serve this data dir on another port (--port). No API key was sent to it."
    )
    if not secret_path.exists():
        raise ServerIdentityError(
            refusal.format(why=f"{secret_path} does not exist, so this data dir was never served")
        )
    try:
        proof = response.json().get("proof") if response.status_code == 200 else None
    except (ValueError, AttributeError):
        proof = None
    if not isinstance(proof, str):
        raise ServerIdentityError(
            refusal.format(
                why=f"it does not answer the identity challenge (GET {IDENTITY_PATH} answered {response.status_code})"
            )
        )
    expected = identity_proof(secret_path.read_text().strip(), port, nonce)
    if not hmac.compare_digest(proof.encode(), expected.encode()):
        raise ServerIdentityError(
            refusal.format(why=f"its answer to the identity challenge does not match {secret_path}")
        )
    return True


def verify_embedded_server(url: str, data_dir: Path, timeout: float = 5.0) -> None:
    """Raise unless the server at `url` proves it is the embedded Argilla of `data_dir`."""
    if not server_is_embedded_argilla_of(url, data_dir, timeout):
        raise NoServerAnswersError(
            f"nothing answers at {url}: start the embedded Argilla with `curation-argilla --data-dir {data_dir} serve`"
        )


def verify_before_sending_key(url: str, api_key: str, data_dir: Path | None = None, timeout: float = 5.0) -> None:
    """Before sending `api_key` to `url`: if it is the embedded owner's key, the server must prove it is that server.

    A key that is not the embedded owner's (a remote Argilla's) is not checked here: nothing is sent.
    """
    from .local_argilla.bootstrap import read_credentials
    from .local_argilla.config import LocalArgillaConfig, default_data_dir

    config = LocalArgillaConfig(data_dir=Path(data_dir) if data_dir else default_data_dir())
    credentials = read_credentials(config)
    if credentials is not None and hmac.compare_digest(credentials.owner.api_key.encode(), api_key.encode()):
        verify_embedded_server(url, config.data_dir, timeout)
