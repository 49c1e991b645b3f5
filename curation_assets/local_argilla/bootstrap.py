"""Each start: schema migrations, then the accounts that are missing; what an admin changed in Argilla stays.

Credentials live in `<data dir>/credentials.json` (mode 0600) or come from the environment;
the well-known defaults of argilla's quickstart images are never used. Argilla's database is the
truth about accounts: the bootstrap creates an account once, never re-creates one that was
deleted there, and never overwrites a password or API key that was changed there
(`curation-argilla rotate` changes both sides together).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import LocalArgillaConfig, write_private_file

OWNER_USERNAME = "owner"
OWNER_API_KEY_ENV = "CURATION_ARGILLA_OWNER_API_KEY"
OWNER_PASSWORD_ENV = "CURATION_ARGILLA_OWNER_PASSWORD"
OWNER_SECRET_ENVS = {"password": OWNER_PASSWORD_ENV, "api_key": OWNER_API_KEY_ENV}
ANNOTATORS_ENV = "CURATION_ARGILLA_ANNOTATORS"
DEMO_ANNOTATORS = ("ana", "bruno", "chen")
MIN_SECRET_LENGTH = 8


class NewerDatabaseError(RuntimeError):
    """The database was migrated by a newer argilla-server than the one installed."""


class AccountsError(ValueError):
    """An account cannot be set up as asked; the message says what to do."""


@dataclass
class Account:
    username: str
    role: str
    # None once the password was changed in Argilla, which keeps only its hash.
    password: str | None
    api_key: str
    # False from generation until the account exists in Argilla. An account that was created and
    # is gone was deleted there. Files written before this field existed hold created accounts only.
    created_in_argilla: bool = True


@dataclass
class Credentials:
    owner: Account
    annotators: list[Account] = field(default_factory=list)
    # Accounts deleted in Argilla: not created again unless restored (`bootstrap --restore NAME`).
    deleted: list[str] = field(default_factory=list)
    # SHA-256 of each owner secret last applied from the environment: a new value there is a rotation.
    applied_from_env: dict[str, str] = field(default_factory=dict)

    @property
    def accounts(self) -> list[Account]:
        return [self.owner, *self.annotators]

    def account(self, username: str) -> Account | None:
        return next((account for account in self.accounts if account.username == username), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Credentials:
        data = json.loads(text)
        return cls(
            owner=Account(**data["owner"]),
            annotators=[Account(**account) for account in data.get("annotators", [])],
            deleted=data.get("deleted", []),
            applied_from_env=data.get("applied_from_env", {}),
        )


@dataclass
class BootstrapResult:
    credentials: Credentials
    created_usernames: list[str]
    # Found deleted in Argilla on this start, or configured but deleted earlier: not re-created.
    deleted_usernames: list[str] = field(default_factory=list)
    # Passwords changed in Argilla since credentials.json last knew them.
    changed_passwords: list[str] = field(default_factory=list)
    # Owner secrets set from a new value in the environment.
    rotated_from_env: list[str] = field(default_factory=list)


def read_credentials(config: LocalArgillaConfig) -> Credentials | None:
    if not config.credentials_path.exists():
        return None
    return Credentials.from_json(config.credentials_path.read_text())


def annotator_names_from(annotators_file: Path | None = None) -> list[str] | None:
    """Annotators from a file (one username per line, # comments) or CURATION_ARGILLA_ANNOTATORS; None if neither is given."""
    if annotators_file is not None:
        lines = annotators_file.read_text().splitlines()
        names = [line.split("#", 1)[0].strip() for line in lines]
        return [name for name in names if name]
    configured = os.environ.get(ANNOTATORS_ENV)
    if configured is not None:
        return [name.strip() for name in configured.split(",") if name.strip()]
    return None


def new_annotator_names(previous: Credentials | None, annotator_names: list[str] | None) -> list[str]:
    """The configured annotators; when none are configured, the demo trio for a new data dir only."""
    if annotator_names is not None:
        return annotator_names
    return [] if previous else list(DEMO_ANNOTATORS)


def plan_credentials(
    previous: Credentials | None, annotator_names: list[str] | None, restore: Sequence[str] = ()
) -> Credentials:
    """Keep every account and secret already issued; generate accounts that are new or restored.

    Accounts deleted in Argilla stay out, also when they are still configured, unless named in `restore`.
    """
    deleted = previous.deleted if previous else []
    not_deleted = sorted(set(restore) - set(deleted))
    if not_deleted:
        raise AccountsError(
            f"cannot restore {', '.join(not_deleted)}: only accounts deleted in Argilla can be restored"
        )
    still_deleted = [name for name in deleted if name not in restore]
    if OWNER_USERNAME in still_deleted:
        raise _owner_deleted_error()
    if previous is None or OWNER_USERNAME in restore:
        owner = _new_account(OWNER_USERNAME, "owner")
        owner.password = _secret_from_env(OWNER_PASSWORD_ENV) or owner.password
        owner.api_key = _secret_from_env(OWNER_API_KEY_ENV) or owner.api_key
    else:
        owner = previous.owner
    known = {account.username: account for account in (previous.annotators if previous else [])}
    configured = [name for name in new_annotator_names(previous, annotator_names) if name not in still_deleted]
    restored = [name for name in restore if name != OWNER_USERNAME]
    # Annotators dropped from the configuration keep their accounts: their answers must stay readable.
    usernames = list(dict.fromkeys([*known, *restored, *configured]))
    annotators = [known.get(name) or _new_account(name, "annotator") for name in usernames]
    return Credentials(
        owner=owner,
        annotators=annotators,
        deleted=still_deleted,
        applied_from_env={} if OWNER_USERNAME in restore else (previous.applied_from_env if previous else {}),
    )


def _owner_deleted_error() -> AccountsError:
    return AccountsError(
        f"the {OWNER_USERNAME!r} account was deleted in Argilla, and the tools need it. Create it again, with new "
        f"secrets, with `curation-argilla bootstrap --restore {OWNER_USERNAME}`."
    )


def _new_account(username: str, role: str) -> Account:
    return Account(
        username=username,
        role=role,
        password=new_password(),
        api_key=new_api_key(role),
        created_in_argilla=False,
    )


def new_password() -> str:
    return secrets.token_urlsafe(12)


def new_api_key(role: str) -> str:
    return f"{role}.{secrets.token_urlsafe(24)}"


def _secret_from_env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"{name} must be at least {MIN_SECRET_LENGTH} characters long")
    return value


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def migrate_database(config: LocalArgillaConfig) -> None:
    """Bring the SQLite schema to the installed server's head; refuse a database from a newer server."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic_config = Config(ALEMBIC_CONFIG_FILE)
    known_revisions = {revision.revision for revision in ScriptDirectory.from_config(alembic_config).walk_revisions()}
    current = _current_revision(config.database_path) if config.uses_sqlite else _current_server_revision()
    if current is not None and current not in known_revisions:
        where = config.database_path if config.uses_sqlite else "The PostgreSQL database"
        raise NewerDatabaseError(
            f"{where} was written by a newer argilla-server (schema revision {current}). "
            "Install the matching argilla-server, or choose another data dir with --data-dir."
        )
    command.upgrade(alembic_config, "head")


def _current_server_revision() -> str | None:
    """The schema revision of the database argilla_server is configured with (PostgreSQL), None if never migrated."""
    from alembic.runtime.migration import MigrationContext
    from argilla_server.database import sync_engine

    with sync_engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _current_revision(database_path: Path) -> str | None:
    if not database_path.exists():
        return None
    with sqlite3.connect(database_path) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return row[0] if row else None


async def reconcile_with_argilla(credentials: Credentials) -> BootstrapResult:
    """Create the accounts Argilla does not have yet; learn from Argilla what changed there. Updates `credentials`."""
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal, async_engine

    result = BootstrapResult(credentials=credentials, created_usernames=[])
    async with AsyncSessionLocal() as db:
        for account in credentials.accounts:
            user = await accounts.get_user_by_username(db, account.username)
            if user is None and account.created_in_argilla:
                result.deleted_usernames.append(account.username)
                continue
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
                user.api_key = account.api_key
                result.created_usernames.append(account.username)
            elif account.password is not None and not accounts.verify_password(account.password, user.password_hash):
                account.password = None
                result.changed_passwords.append(account.username)
            account.created_in_argilla = True
            account.api_key = user.api_key
            if account is credentials.owner:
                result.rotated_from_env = _apply_owner_secrets_from_env(credentials, user, accounts)
            await db.commit()
    # The pooled connections belong to this short-lived event loop, not to the server's.
    await async_engine.dispose()
    credentials.annotators = [
        account for account in credentials.annotators if account.username not in result.deleted_usernames
    ]
    credentials.deleted = list(dict.fromkeys([*credentials.deleted, *result.deleted_usernames]))
    return result


def _apply_owner_secrets_from_env(credentials: Credentials, user, accounts) -> list[str]:
    """Set the owner's secrets from the environment where their value there is new; returns the variables applied."""
    applied = []
    for attribute, variable in OWNER_SECRET_ENVS.items():
        value = _secret_from_env(variable)
        if value is None or credentials.applied_from_env.get(variable) == _digest(value):
            continue
        if attribute == "password" and not accounts.verify_password(value, user.password_hash):
            user.password_hash = accounts.hash_password(value)
            applied.append(variable)
        elif attribute == "api_key" and user.api_key != value:
            user.api_key = value
            applied.append(variable)
        setattr(credentials.owner, attribute, value)
        credentials.applied_from_env[variable] = _digest(value)
    return applied


def bootstrap(
    config: LocalArgillaConfig, annotator_names: list[str] | None, restore: Sequence[str] = ()
) -> BootstrapResult:
    """Migrate, create the accounts that are missing, and record in credentials.json what Argilla holds."""
    import asyncio

    migrate_database(config)
    previous = read_credentials(config)
    credentials = plan_credentials(previous, annotator_names, restore)
    # Written before Argilla is touched, so that a generated secret is never lost to a crash.
    write_private_file(config.credentials_path, credentials.to_json())
    result = asyncio.run(reconcile_with_argilla(credentials))
    write_private_file(config.credentials_path, credentials.to_json())
    configured_but_deleted = [
        name for name in new_annotator_names(previous, annotator_names) if name in credentials.deleted
    ]
    result.deleted_usernames = list(dict.fromkeys([*result.deleted_usernames, *configured_but_deleted]))
    if OWNER_USERNAME in result.deleted_usernames:
        raise _owner_deleted_error()
    return result


def describe_bootstrap(result: BootstrapResult, url: str, show_passwords: bool = True) -> str:
    """What this start changed: the logins just generated (without passwords when output goes to a log), and what Argilla
    changed."""
    lines = []
    new_accounts = [account for account in result.credentials.accounts if account.username in result.created_usernames]
    if new_accounts and show_passwords:
        lines.append(f"New Argilla accounts at {url} (shown once; later: `curation-argilla credentials`):")
        lines += [
            f"  {account.role:<9} {account.username:<12} password: {account.password}" for account in new_accounts
        ]
    elif new_accounts:
        lines.append(f"New Argilla accounts at {url} (passwords: `curation-argilla credentials`):")
        lines += [f"  {account.role:<9} {account.username}" for account in new_accounts]
    if result.deleted_usernames:
        lines.append(
            f"Deleted in Argilla, not re-created: {', '.join(result.deleted_usernames)} "
            "(to create one again with new secrets: `curation-argilla bootstrap --restore NAME`)"
        )
    if result.changed_passwords:
        lines.append(
            f"Password changed in Argilla, kept: {', '.join(result.changed_passwords)} "
            "(credentials.json no longer knows it; `curation-argilla rotate NAME --password` sets a new one in both)"
        )
    if result.rotated_from_env:
        lines.append(f"Owner secrets set from a new value of {', '.join(result.rotated_from_env)}")
    return "\n".join(lines)
