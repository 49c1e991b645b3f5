"""`curation-argilla`: serve, bootstrap and inspect the embedded Argilla server."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx

from ..server_identity import ServerIdentityError, server_is_embedded_argilla_of
from .bootstrap import NewerDatabaseError, annotator_names_from, read_credentials
from .config import (
    DATABASE_URL_ENV,
    DEFAULT_HOST,
    DEFAULT_PORT,
    REDIS_URL_ENV,
    WORKERS_ENV,
    LocalArgillaConfig,
    default_data_dir,
)
from .interpreter import has_argilla_server, server_command
from .server import CannotServeError, ServeOptions


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    if arguments.command in (_serve, _bootstrap) and not has_argilla_server():
        # The server lives in its own virtualenv (see interpreter.py): hand the command over to it.
        command = server_command(*(sys.argv[1:] if argv is None else argv))
        os.execv(command[0], command)
    try:
        config = LocalArgillaConfig.from_environment(arguments.data_dir.resolve(), arguments.host, arguments.port)
    except ValueError as error:
        print(f"curation-argilla: {error}", file=sys.stderr)
        return 2
    try:
        return arguments.command(config, arguments)
    except (CannotServeError, NewerDatabaseError, ServerIdentityError, ValueError) as error:
        print(f"curation-argilla: {error}", file=sys.stderr)
        return 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curation-argilla",
        description=(
            "The embedded Argilla 2.8 server: SQLite, no Elasticsearch, no Redis, no Docker "
            f"(or PostgreSQL and Redis with several workers: {DATABASE_URL_ENV}, {REDIS_URL_ENV})."
        ),
    )
    parser.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="database, credentials (default: %(default)s)"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate, create accounts if missing, and serve the API and UI")
    _add_annotator_options(serve)
    serve.add_argument("--allow-remote", action="store_true", help="allow demo accounts on a non-loopback address")
    serve.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get(WORKERS_ENV, "1")),
        help=f"server processes on the one port; more than 1 needs {DATABASE_URL_ENV} (PostgreSQL) and "
        f"{REDIS_URL_ENV} (default: ${WORKERS_ENV} or 1)",
    )
    serve.add_argument(
        "--hide-passwords",
        action="store_true",
        help="do not print generated passwords (when the output goes to a log file)",
    )
    serve.set_defaults(command=_serve)

    setup = commands.add_parser("bootstrap", help="migrate and create the owner and annotators, then exit")
    _add_annotator_options(setup)
    setup.add_argument(
        "--restore", action="append", default=[], metavar="NAME",
        help="create again, with new secrets, an account that was deleted in Argilla (repeatable)",
    )  # fmt: skip
    setup.set_defaults(command=_bootstrap)

    rotate = commands.add_parser(
        "rotate", help="give a user a new password and/or API key, in Argilla and in credentials.json together"
    )
    rotate.add_argument("username")
    rotate.add_argument("--password", action="store_true", help="only the password (default: password and API key)")
    rotate.add_argument("--api-key", action="store_true", help="only the API key (default: password and API key)")
    rotate.set_defaults(command=_rotate)

    status = commands.add_parser("status", help="is the server up, and what does it hold")
    status.set_defaults(command=_status)

    credentials = commands.add_parser("credentials", help="print the stored logins and API keys")
    credentials.add_argument("--env", action="store_true", help="print shell exports for the pipeline instead")
    credentials.set_defaults(command=_credentials)
    return parser


def _add_annotator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--annotators-file",
        type=Path,
        help="one annotator username per line (default: $CURATION_ARGILLA_ANNOTATORS; else, on a new data dir only, demo annotators)",
    )


def _serve(config: LocalArgillaConfig, arguments: argparse.Namespace) -> int:
    from .server import serve

    options = ServeOptions(
        annotator_names=annotator_names_from(arguments.annotators_file),
        allow_remote=arguments.allow_remote,
        log_level=arguments.log_level,
        show_passwords=not arguments.hide_passwords,
        workers=arguments.workers,
    )
    serve(config, options)
    return 0


def _bootstrap(config: LocalArgillaConfig, arguments: argparse.Namespace) -> int:
    from .bootstrap import bootstrap, describe_bootstrap
    from .runtime import clear_frontend_copies, import_argilla_server

    import_argilla_server(config)
    try:
        result = bootstrap(config, annotator_names_from(arguments.annotators_file), restore=arguments.restore)
    finally:
        clear_frontend_copies(config)
    print(describe_bootstrap(result, config.url) or f"Accounts up to date in {config.data_dir}")
    return 0


def _rotate(config: LocalArgillaConfig, arguments: argparse.Namespace) -> int:
    from .rotation import SECRETS, rotate_secrets

    which = tuple(secret for secret, asked in zip(SECRETS, (arguments.password, arguments.api_key)) if asked) or SECRETS
    rotate_secrets(config, arguments.username, which)
    changed = " and ".join(secret.replace("_", " ") for secret in which)
    print(
        f"New {changed} for {arguments.username} in Argilla and in {config.credentials_path}: `curation-argilla credentials` shows it."
    )
    if "password" in which:
        print("Sessions signed in with the old password have ended.")
    if "api_key" in which:
        print(
            "The old API key no longer works: update whatever used it (`curation-argilla credentials --env` for the pipeline)."
        )
    return 0


def _status(config: LocalArgillaConfig, arguments: argparse.Namespace) -> int:
    credentials = read_credentials(config)
    # The owner's key goes only to a server that proved it serves this data dir.
    if not server_is_embedded_argilla_of(config.url, config.data_dir):
        print(f"No Argilla answers at {config.url}. Start one with: curation-argilla serve --port {config.port}")
        return 1
    headers = {"X-Argilla-Api-Key": credentials.owner.api_key} if credentials else {}
    response = httpx.get(f"{config.url}/api/v1/status", headers=headers, timeout=5)
    if response.status_code == 401:
        print(
            f"Argilla at {config.url} is up, but rejects the owner's API key in {config.credentials_path}: "
            "`curation-argilla rotate owner --api-key` gives the owner a new one in both."
        )
        return 1
    response.raise_for_status()
    version = response.json().get("version", "?")
    print(f"Argilla {version} is up at {config.url} (data: {config.data_dir})")
    if credentials:
        datasets = httpx.get(f"{config.url}/api/v1/me/datasets", headers=headers, timeout=5).json()["items"]
        print(f"{len(datasets)} dataset(s); annotators: {', '.join(a.username for a in credentials.annotators)}")
    return 0


def _credentials(config: LocalArgillaConfig, arguments: argparse.Namespace) -> int:
    credentials = read_credentials(config)
    if credentials is None:
        print(f"No credentials in {config.data_dir} yet: run `curation-argilla serve` (or `bootstrap`) first.")
        return 1
    if arguments.env:
        print(f"export ARGILLA_API_URL={config.url}")
        print(f"export ARGILLA_API_KEY={credentials.owner.api_key}")
        return 0
    print(f"Argilla at {config.url} (from {config.credentials_path})")
    for account in credentials.accounts:
        password = account.password or "(changed in Argilla)"
        print(f"  {account.role:<9} {account.username:<12} password: {password:<18} api key: {account.api_key}")
    if credentials.deleted:
        print(f"Deleted in Argilla: {', '.join(credentials.deleted)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
