"""Run Dagster's webserver (alone or in `dagster dev`) so that pages from other sites cannot act through it.

dagster-webserver 1.13 (`dagster_webserver/graphql.py`) executes whatever GraphQL operation a
request carries: by GET from the query string (any page can make a browser send
`GET /graphql?query=mutation{launchRun(...)}`, as an image even, without CORS getting in the
way), and by POST with a content type that is not JSON, again from the query string (a plain
cross-site form). It checks neither Origin nor Host. Its only switch, `--read-only`, turns off
every mutation, the UI's own too, and `dagster dev` cannot pass it on. So this runs the same
webserver with a guard in front:

- GraphQL by GET may only query: a mutation or subscription is refused (405);
- a request that can change state (any method but GET/HEAD/OPTIONS, and WebSocket upgrades)
  from a page of another origin is refused (403);
- a Host header that does not name this server (DNS rebinding) is refused (400).

The UI POSTs JSON from its own origin and keeps working.

    python -m curation_assets.quickstart.dagster_web_guard dev [dagster dev options]
    python -m curation_assets.quickstart.dagster_web_guard webserver [dagster-webserver options]
"""

from __future__ import annotations

import os
import sys
from urllib.parse import parse_qs

from ..web_security import (
    LOOPBACK_NAMES,
    SAFE_METHODS,
    Receive,
    Scope,
    Send,
    host_is_allowed,
    is_cross_origin,
    send_json,
)

MODULE = "curation_assets.quickstart.dagster_web_guard"
ALLOWED_HOSTS_ENV = "CURATION_DAGSTER_ALLOWED_HOSTS"


def guarded_dagster_dev_command(dagster_dev_arguments: list[str]) -> list[str]:
    """The command that runs `dagster dev <arguments>` with the guarded webserver."""
    return [sys.executable, "-m", MODULE, "dev", *dagster_dev_arguments]


class DagsterWebGuard:
    """ASGI guard for the Dagster webserver; see the module's docstring."""

    def __init__(self, app, bound_host: str = "127.0.0.1"):
        self.app = app
        self.bound_host = bound_host
        extra = {name.strip().lower() for name in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if name.strip()}
        self.host_names = {*LOOPBACK_NAMES, bound_host.lower(), *extra}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[1]})
        else:
            await send_json(send, *refusal)

    def _refusal(self, scope: Scope) -> tuple[int, str] | None:
        if not host_is_allowed(scope, self.host_names, self.bound_host):
            return (
                400,
                f"unknown Host header: this Dagster answers to {', '.join(sorted(self.host_names))} (more: {ALLOWED_HOSTS_ENV})",
            )
        changes_state = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        if changes_state and is_cross_origin(scope):
            return 403, "requests that can change state are accepted from this Dagster's own pages only"
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"].endswith("/graphql"):
            if _graphql_query_asks_for_more_than_reading(scope):
                return 405, "GraphQL mutations and subscriptions must be sent by POST, from this Dagster's own pages"
        return None


def _graphql_query_asks_for_more_than_reading(scope: Scope) -> bool:
    from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

    queries = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("query", [])
    for query in queries:
        try:
            document = parse(query)
        except GraphQLError:
            continue  # Dagster rejects it the same way, before executing anything
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.operation != OperationType.QUERY:
                return True
    return False


def _bound_host(arguments: list[str]) -> str:
    for index, argument in enumerate(arguments):
        if argument in ("--host", "-h", "--dagit-host") and index + 1 < len(arguments):
            return arguments[index + 1]
        if argument.startswith("--host="):
            return argument.split("=", 1)[1]
    return "127.0.0.1"


def run_guarded_webserver(arguments: list[str]) -> None:
    """`dagster-webserver <arguments>`, its app behind DagsterWebGuard."""
    from dagster_webserver import cli

    create_app = cli.create_app_from_workspace_process_context
    bound_host = _bound_host(arguments)

    def create_guarded_app(*args, **kwargs):
        return DagsterWebGuard(create_app(*args, **kwargs), bound_host)

    cli.create_app_from_workspace_process_context = create_guarded_app
    sys.argv = ["dagster-webserver", *arguments]
    cli.main()


def run_guarded_dagster_dev(arguments: list[str]) -> None:
    """`dagster dev <arguments>`, with its webserver process started by this module instead."""
    from dagster._cli import dev

    launch = dev.open_ipc_subprocess

    def launch_guarded(parts: list[str], **kwargs):
        if parts[1:3] == ["-m", "dagster_webserver"]:
            parts = [parts[0], "-m", MODULE, "webserver", *parts[3:]]
        return launch(parts, **kwargs)

    dev.open_ipc_subprocess = launch_guarded
    dev.dev_command.main(args=arguments, prog_name="dagster dev")


def main(argv: list[str] | None = None) -> None:
    arguments = sys.argv[1:] if argv is None else argv
    commands = {"dev": run_guarded_dagster_dev, "webserver": run_guarded_webserver}
    if not arguments or arguments[0] not in commands:
        sys.exit(f"usage: python -m {MODULE} {{dev,webserver}} [options of `dagster dev` or `dagster-webserver`]")
    commands[arguments[0]](arguments[1:])


if __name__ == "__main__":
    main()
