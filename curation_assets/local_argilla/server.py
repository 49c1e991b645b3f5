"""Serve the real Argilla API and web UI from this process: migrate, bootstrap, then uvicorn."""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..web_security import WILDCARD_HOSTS
from .bootstrap import DEMO_ANNOTATORS, bootstrap, describe_bootstrap, new_annotator_names, read_credentials
from .config import DATABASE_URL_ENV, REDIS_URL_ENV, LocalArgillaConfig, bind_refusal
from .hardening import harden, prepare_environment
from .runtime import clear_frontend_copies, import_argilla_server

ALLOW_REMOTE_ENV = "CURATION_ARGILLA_ALLOW_REMOTE"


class CannotServeError(RuntimeError):
    """A precondition for serving failed; the message says what to do."""


@dataclass(frozen=True)
class ServeOptions:
    # None: none configured (the demo trio on a new data dir, no one new on an existing one).
    annotator_names: list[str] | None
    allow_remote: bool = False
    log_level: str = "warning"
    show_passwords: bool = True
    # Server processes answering on the one port (uvicorn's workers); more than one needs PostgreSQL and Redis.
    workers: int = 1


def check_can_serve(config: LocalArgillaConfig, options: ServeOptions) -> None:
    """Fail early, with a next step, on the usual reasons a local server cannot start."""
    _check_workers(config, options.workers)
    _check_data_dir_writable(config.data_dir)
    _check_port_free(config.host, config.port)
    allowed = options.allow_remote or os.environ.get(ALLOW_REMOTE_ENV) == "1"
    # Accounts are never deleted (their answers must stay readable), so demo accounts created on an
    # earlier, local start would still be served: count those too, not only the configured names.
    stored = read_credentials(config)
    existing = [account.username for account in stored.annotators] if stored else []
    to_serve = [*new_annotator_names(stored, options.annotator_names), *existing]
    demo_accounts = sorted({name for name in to_serve if name in DEMO_ANNOTATORS})
    if not config.is_loopback and demo_accounts and not allowed:
        raise CannotServeError(
            f"refusing to serve demo accounts ({', '.join(demo_accounts)}) on {config.host}, which other machines "
            f"can reach. Bind to 127.0.0.1, use a data dir with real annotators only, or pass --allow-remote "
            f"({ALLOW_REMOTE_ENV}=1)."
        )


def _check_workers(config: LocalArgillaConfig, workers: int) -> None:
    """Several processes share nothing in memory: the database and the job registry must live outside them."""
    if workers < 1:
        raise CannotServeError(f"--workers must be 1 or more, not {workers}")
    if workers == 1:
        return
    if config.uses_sqlite:
        raise CannotServeError(
            f"{workers} workers need PostgreSQL ({DATABASE_URL_ENV}): SQLite takes one writer at a time, and the "
            "embedded write path orders its writers within one process only. Serve SQLite with one worker, or "
            "use the team profile (docs/team.md)."
        )
    if config.redis_url is None:
        raise CannotServeError(
            f"{workers} workers need a real Redis ({REDIS_URL_ENV}): a background job's status, kept in an "
            "in-process stand-in, would be known to the worker that started it only (the web UI polls it, e.g. "
            "for a Hub import). Start redis-server, or use the team profile (docs/team.md)."
        )


def _check_data_dir_writable(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir):
            pass
    except OSError as error:
        raise CannotServeError(
            f"data dir {data_dir} is not writable ({error.strerror}). "
            "Choose another with --data-dir or CURATION_ARGILLA_HOME."
        ) from error


def _check_port_free(host: str, port: int) -> None:
    error = bind_refusal(host, port)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        raise CannotServeError(
            f"port {port} on {host} is already in use (another Argilla? check "
            f"`curation-argilla status --port {port}`). Stop it or pass --port."
        ) from error
    raise CannotServeError(f"cannot bind {host}:{port}: {error.strerror}") from error


# How long an idle connection stays open. uvicorn's default, 5 s, is httpx's own keep-alive expiry: a client
# reusing a connection idle for just under 5 s raced the server closing it, and got "Server disconnected without
# sending a response" (1 request in about 2,000 at 50 annotators working at human pace, bench/load.py). Longer
# than any common client's expiry, the server is never the side that closes an idle connection first.
KEEP_ALIVE_SECONDS = 75


def serve(config: LocalArgillaConfig, options: ServeOptions) -> None:
    """Run the server until interrupted; prints the logins generated on this start."""
    import uvicorn

    check_can_serve(config, options)
    prepare_environment(config)
    argilla_server = import_argilla_server(config)
    try:
        result = bootstrap(config, options.annotator_names)
        message = describe_bootstrap(result, config.url, show_passwords=options.show_passwords)
        if message:
            print(message, flush=True)
        processes = f", {options.workers} worker processes" if options.workers > 1 else ""
        print(f"Argilla is starting at {_where(config)} (data: {config.data_dir}{processes})", flush=True)
        # uvicorn re-raises SIGTERM after its graceful shutdown; as an exception it still lets `finally` clean up.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        # The UI and the client poll a lot; access logs would drown real messages.
        common = dict(
            host=config.host,
            port=config.port,
            log_level=options.log_level,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        if options.workers == 1:
            uvicorn.run(harden(argilla_server.app, config), **common)
        else:
            # Each worker is a new interpreter (spawned) that builds the app itself, from the same settings.
            os.environ[_WORKER_CONFIG_ENV] = json.dumps(
                {"data_dir": str(config.data_dir), "host": config.host, "port": config.port}
            )
            os.environ[DATABASE_URL_ENV], os.environ[REDIS_URL_ENV] = config.database_url, config.redis_url
            uvicorn.run(f"{__name__}:worker_app", factory=True, workers=options.workers, **common)
    finally:
        clear_frontend_copies(config)


_WORKER_CONFIG_ENV = "CURATION_ARGILLA_WORKER_CONFIG"


def worker_app():
    """The app of one worker process: argilla_server imported with the runtime and hardening the single process has.

    The database and Redis URLs come from the environment the starting process set up (and
    already migrated and bootstrapped); only in-memory state is per worker (see docs/team.md).
    """
    settings = json.loads(os.environ[_WORKER_CONFIG_ENV])
    config = LocalArgillaConfig.from_environment(Path(settings["data_dir"]), settings["host"], settings["port"])
    argilla_server = import_argilla_server(config, clear_frontend=False)
    return harden(argilla_server.app, config)


def _where(config: LocalArgillaConfig) -> str:
    """The address actually bound; for every interface, also the URL to use on this machine."""
    if config.host in WILDCARD_HOSTS:
        return f"{config.bind_url}, every interface (on this machine: {config.url})"
    return config.bind_url
