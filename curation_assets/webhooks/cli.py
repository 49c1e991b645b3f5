"""`curation-webhooks`: run the webhook receiver, and register its webhook in an Argilla server.

The Quickstart does both for the embedded server. For another Argilla (a Space, a team server):

    curation-webhooks register --project NAME --receiver-url https://dagster-host.example/argilla
    curation-webhooks serve --host 0.0.0.0 --port 6910     # behind TLS: Argilla must reach it

`register` reads the server's URL and an owner's key from the environment variables the project
names, and keeps the secret Argilla generates in a file only its owner can read.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ..argilla_adapter.client import ArgillaClient
from ..argilla_adapter.errors import ArgillaError
from ..argilla_adapter.rest import Connection
from ..web_security import LOOPBACK_NAMES
from .marks import WebhookMarks, default_marks_dir
from .receiver import DEFAULT_HOST, DEFAULT_PORT, WebhookReceiver
from .registration import DEFAULT_RECEIVER_URL, register
from .secret import WebhookSecretError, load_keys, save_secret, secret_file


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    os.umask(0o077)
    try:
        return arguments.command(arguments)
    except (WebhookSecretError, ArgillaError, ValueError, OSError) as error:
        print(f"curation-webhooks: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curation-webhooks",
        description="Argilla's answer webhooks into the curation sensors: a receiver that checks signatures and "
        "leaves marks the sensors read within seconds (polling stays the fallback).",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="receive Argilla's deliveries until stopped")
    serve.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="(default: %(default)s)")
    serve.add_argument("--marks-dir", type=Path, help=f"where sensors read the marks (default: {default_marks_dir()})")
    serve.add_argument("--secret-file", type=Path, help=f"one secret per line, mode 0600 (default: {secret_file()})")
    serve.set_defaults(command=_serve)

    enrol = commands.add_parser("register", help="create or update the webhook in Argilla and keep its secret")
    enrol.add_argument("--project", help="read the Argilla URL/key variables and receiver_url from this project")
    enrol.add_argument(
        "--receiver-url", help=f"where Argilla posts (default: the project's, else {DEFAULT_RECEIVER_URL})"
    )
    enrol.add_argument("--secret-file", type=Path, help=f"where to keep the secret (default: {secret_file()})")
    enrol.set_defaults(command=_register)
    return parser


def _serve(arguments: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    receiver = WebhookReceiver(
        load_keys(arguments.secret_file), WebhookMarks(arguments.marks_dir), arguments.host, arguments.port
    )
    print(f"Receiving Argilla's webhooks at {receiver.url} (marks: {receiver.marks.folder})", flush=True)
    if arguments.host not in LOOPBACK_NAMES:
        print("Listening beyond this machine: put TLS in front of it (signatures prove the sender, not privacy).")
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def _register(arguments: argparse.Namespace) -> int:
    url_env, key_env, receiver_url = "ARGILLA_API_URL", "ARGILLA_API_KEY", None
    if arguments.project:
        from ..defs.project import ArgillaSettings
        from ..quickstart.declare import read_attributes

        settings = ArgillaSettings.model_validate(read_attributes(arguments.project).get("argilla") or {})
        url_env, key_env, receiver_url = settings.url_env, settings.api_key_env, settings.webhooks.receiver_url
    missing = [name for name in (url_env, key_env) if not os.environ.get(name)]
    if missing:
        raise ValueError(f"set {' and '.join(missing)} (the Argilla server's URL and an owner's API key)")
    receiver_url = arguments.receiver_url or receiver_url or DEFAULT_RECEIVER_URL
    with ArgillaClient(Connection(os.environ[url_env], os.environ[key_env])) as argilla:
        webhook = register(argilla, receiver_url)
    kept = save_secret(webhook["secret"], arguments.secret_file)
    print(f"Argilla at {os.environ[url_env]} posts answers to {receiver_url}; its secret is in {kept} (mode 0600).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
