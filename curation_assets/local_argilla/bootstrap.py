"""Idempotent first start: schema migrations, an owner with generated secrets, annotator accounts.

Credentials live in `<data dir>/credentials.json` (mode 0600) or come from the environment;
the well-known defaults of argilla's quickstart images are never used.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import LocalArgillaConfig, write_private_file

OWNER_USERNAME = "owner"
OWNER_API_KEY_ENV = "CURATION_ARGILLA_OWNER_API_KEY"
OWNER_PASSWORD_ENV = "CURATION_ARGILLA_OWNER_PASSWORD"
ANNOTATORS_ENV = "CURATION_ARGILLA_ANNOTATORS"
DEMO_ANNOTATORS = ("ana", "bruno", "chen")
MIN_SECRET_LENGTH = 8


class NewerDatabaseError(RuntimeError):
    """The database was migrated by a newer argilla-server than the one installed."""


@dataclass
class Account:
    username: str
    role: str
    password: str
    api_key: str


@dataclass
class Credentials:
    owner: Account
    annotators: list[Account] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Credentials":
        data = json.loads(text)
        return cls(
            owner=Account(**data["owner"]),
            annotators=[Account(**account) for account in data.get("annotators", [])],
        )


@dataclass
class BootstrapResult:
    credentials: Credentials
    created_usernames: list[str]


def read_credentials(config: LocalArgillaConfig) -> Credentials | None:
    if not config.credentials_path.exists():
        return None
    return Credentials.from_json(config.credentials_path.read_text())


def annotator_names_from(annotators_file: Path | None = None) -> list[str]:
    """Annotators from a file (one username per line, # comments), CURATION_ARGILLA_ANNOTATORS, or the demo trio."""
    if annotators_file is not None:
        lines = annotators_file.read_text().splitlines()
        names = [line.split("#", 1)[0].strip() for line in lines]
        return [name for name in names if name]
    configured = os.environ.get(ANNOTATORS_ENV)
    if configured is not None:
        return [name.strip() for name in configured.split(",") if name.strip()]
    return list(DEMO_ANNOTATORS)


def plan_credentials(previous: Credentials | None, annotator_names: list[str]) -> tuple[Credentials, list[str]]:
    """Keep every secret already issued; generate only for accounts that are new. Returns the new usernames too."""
    owner = previous.owner if previous else _new_account(OWNER_USERNAME, "owner")
    owner = Account(
        username=owner.username,
        role="owner",
        password=_secret_from_env(OWNER_PASSWORD_ENV) or owner.password,
        api_key=_secret_from_env(OWNER_API_KEY_ENV) or owner.api_key,
    )
    known = {account.username: account for account in (previous.annotators if previous else [])}
    # Annotators dropped from the configuration keep their accounts: their answers must stay readable.
    usernames = list(dict.fromkeys([*known, *annotator_names]))
    annotators = [known.get(name) or _new_account(name, "annotator") for name in usernames]
    created = [name for name in usernames if name not in known]
    if previous is None:
        created.insert(0, OWNER_USERNAME)
    return Credentials(owner=owner, annotators=annotators), created


def _new_account(username: str, role: str) -> Account:
    return Account(
        username=username,
        role=role,
        password=secrets.token_urlsafe(12),
        api_key=f"{role}.{secrets.token_urlsafe(24)}",
    )


def _secret_from_env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"{name} must be at least {MIN_SECRET_LENGTH} characters long")
    return value


def migrate_database(config: LocalArgillaConfig) -> None:
    """Bring the SQLite schema to the installed server's head; refuse a database from a newer server."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic_config = Config(ALEMBIC_CONFIG_FILE)
    known_revisions = {revision.revision for revision in ScriptDirectory.from_config(alembic_config).walk_revisions()}
    current = _current_revision(config.database_path)
    if current is not None and current not in known_revisions:
        raise NewerDatabaseError(
            f"{config.database_path} was written by a newer argilla-server (schema revision {current}). "
            "Install the matching argilla-server, or choose another data dir with --data-dir."
        )
    command.upgrade(alembic_config, "head")


def _current_revision(database_path: Path) -> str | None:
    if not database_path.exists():
        return None
    with sqlite3.connect(database_path) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


async def apply_credentials(credentials: Credentials) -> None:
    """Create or update the users in the server's database to match the credentials."""
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal, async_engine

    async with AsyncSessionLocal() as db:
        for account in [credentials.owner, *credentials.annotators]:
            user = await accounts.get_user_by_username(db, account.username)
            if user is None:
                user = await accounts.create_user(
                    db,
                    {
                        "first_name": account.username,
                        "last_name": None,
                        "username": account.username,
                        "role": account.role,
                        "password": account.password,
                    },
                )
            elif not accounts.verify_password(account.password, user.password_hash):
                user.password_hash = accounts.hash_password(account.password)
            user.api_key = account.api_key
            await db.commit()
    # The pooled connections belong to this short-lived event loop, not to the server's.
    await async_engine.dispose()


def bootstrap(config: LocalArgillaConfig, annotator_names: list[str]) -> BootstrapResult:
    """Migrate, then make the database's users match the stored (or newly generated) credentials."""
    import asyncio

    migrate_database(config)
    credentials, created = plan_credentials(read_credentials(config), annotator_names)
    write_private_file(config.credentials_path, credentials.to_json())
    asyncio.run(apply_credentials(credentials))
    return BootstrapResult(credentials=credentials, created_usernames=created)


def describe_new_accounts(result: BootstrapResult, url: str, show_passwords: bool = True) -> str:
    """The one-time message with the logins that were just generated (without passwords when output goes to a log)."""
    new_accounts = [
        account
        for account in [result.credentials.owner, *result.credentials.annotators]
        if account.username in result.created_usernames
    ]
    if not new_accounts:
        return ""
    if not show_passwords:
        lines = [f"New Argilla accounts at {url} (passwords: `curation-argilla credentials`):"]
        return "\n".join(lines + [f"  {account.role:<9} {account.username}" for account in new_accounts])
    lines = [f"New Argilla accounts at {url} (shown once; later: `curation-argilla credentials`):"]
    lines += [f"  {account.role:<9} {account.username:<12} password: {account.password}" for account in new_accounts]
    return "\n".join(lines)
