"""The webhook secret: from the environment or from a file only its owner can read; never printed or logged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .. import state
from ..logic.webhook_events import secret_key

SECRET_ENV = "CURATION_WEBHOOK_SECRET"
SECRET_FILE_ENV = "CURATION_WEBHOOK_SECRET_FILE"


class WebhookSecretError(RuntimeError):
    """No usable secret; the message says where it was looked for and what to do (it never contains the secret)."""


def default_secret_file() -> Path:
    return state.state_dir() / "webhooks" / "secret"


def secret_file(path: Path | str | None = None) -> Path:
    return Path(path or os.environ.get(SECRET_FILE_ENV) or default_secret_file()).expanduser()


def load_keys(path: Path | str | None = None) -> list[bytes]:
    """The HMAC keys to accept: $CURATION_WEBHOOK_SECRET, else one secret per line of the secret file.

    Several lines let one receiver serve several Argilla servers, or a rotation overlap.
    """
    from_environment = os.environ.get(SECRET_ENV, "").strip()
    if from_environment:
        return [_key(from_environment, SECRET_ENV)]
    file = secret_file(path)
    try:
        mode = file.stat().st_mode
    except FileNotFoundError as error:
        raise WebhookSecretError(
            f"no webhook secret: set {SECRET_ENV}, or register the webhook first "
            f"(`curation-webhooks register`), which writes {file}"
        ) from error
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise WebhookSecretError(
            f"the webhook secret file {file} can be read by others (mode {stat.S_IMODE(mode):o}): "
            f"run `chmod 600 {file}`, then start again"
        )
    lines = [line.strip() for line in file.read_text().splitlines()]
    keys = [_key(line, str(file)) for line in lines if line and not line.startswith("#")]
    if not keys:
        raise WebhookSecretError(f"the webhook secret file {file} holds no secret: register the webhook again")
    return keys


def _key(secret: str, where: str) -> bytes:
    try:
        return secret_key(secret)
    except ValueError as error:
        raise WebhookSecretError(f"the webhook secret in {where} is unusable: {error}") from error


def save_secret(secret: str, path: Path | str | None = None) -> Path:
    """Keep the secret Argilla generated, readable by its owner only (0600 in a 0700 folder)."""
    file = secret_file(path)
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # 0600 from creation: the secret is never readable by others, not even for a moment.
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret.strip() + "\n")
    os.chmod(file, 0o600)
    return file
