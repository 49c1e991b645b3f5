"""`curation-argilla rotate`: a new password or API key, in Argilla and in credentials.json together.

It writes the server's `users` table directly (bcrypt, as argilla_server hashes; SQLite or PostgreSQL), so it needs
no server import and works while the server runs: Argilla reads users per request, and session
tokens signed for the old password stop working at once (see hardening.py).
"""

from __future__ import annotations

import datetime
import os

import bcrypt

from .bootstrap import OWNER_SECRET_ENVS, OWNER_USERNAME, new_api_key, new_password, read_credentials
from .config import LocalArgillaConfig, write_private_file

SECRETS = ("password", "api_key")


def rotate_secrets(config: LocalArgillaConfig, username: str, which: tuple[str, ...] = SECRETS) -> None:
    """Give `username` a new generated password and/or API key in Argilla, then in credentials.json."""
    credentials = read_credentials(config)
    if credentials is None:
        raise ValueError(
            f"no credentials in {config.data_dir} yet: run `curation-argilla serve` (or `bootstrap`) first"
        )
    if username in credentials.deleted:
        raise ValueError(
            f"{username!r} was deleted in Argilla: `curation-argilla bootstrap --restore {username}` creates it again"
        )
    account = credentials.account(username)
    if account is None:
        raise ValueError(
            f"{username!r} is not in {config.credentials_path}: accounts made in Argilla by hand are managed there"
        )
    # An owner secret given in the environment is the one everything else uses: it changes there (`serve` applies it).
    from_env = [OWNER_SECRET_ENVS[secret] for secret in which if os.environ.get(OWNER_SECRET_ENVS[secret])]
    if username == OWNER_USERNAME and from_env:
        raise ValueError(
            f"the owner's {' and '.join(from_env)} come from the environment: set a new value there and restart `serve`"
        )
    password = new_password() if "password" in which else None
    api_key = new_api_key(account.role) if "api_key" in which else None
    _update_user(config, username, password, api_key)
    if password is not None:
        account.password = password
    if api_key is not None:
        account.api_key = api_key
    write_private_file(config.credentials_path, credentials.to_json())


def _update_user(config: LocalArgillaConfig, username: str, password: str | None, api_key: str | None) -> None:
    from sqlalchemy import create_engine, text

    if config.uses_sqlite and not config.database_path.exists():
        raise ValueError(f"no Argilla database at {config.database_path}: run `curation-argilla serve` first")
    changes = {"updated_at": datetime.datetime.now(datetime.UTC).replace(tzinfo=None)}
    if password is not None:
        changes["password_hash"] = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
    if api_key is not None:
        changes["api_key"] = api_key
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    # A running server may hold SQLite's write lock for a moment (a bulk upsert): wait for it.
    engine = create_engine(config.sync_database_url, connect_args={"timeout": 60} if config.uses_sqlite else {})
    try:
        with engine.begin() as connection:
            updated = connection.execute(
                text(f"UPDATE users SET {assignments} WHERE username = :username"), {**changes, "username": username}
            ).rowcount
    finally:
        engine.dispose()
    if updated != 1:
        where = config.database_path if config.uses_sqlite else "its PostgreSQL database"
        raise ValueError(
            f"{username!r} is in credentials.json but not in Argilla ({where}): "
            "start `curation-argilla serve` once, which notices deleted accounts"
        )
