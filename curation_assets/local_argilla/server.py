"""Serve the real Argilla API and web UI from this process: migrate, bootstrap, then uvicorn."""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..web_security import WILDCARD_HOSTS
from .bootstrap import DEMO_ANNOTATORS, bootstrap, describe_bootstrap, new_annotator_names, read_credentials
from .config import LocalArgillaConfig
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


def check_can_serve(config: LocalArgillaConfig, options: ServeOptions) -> None:
    """Fail early, with a next step, on the usual reasons a local server cannot start."""
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
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn does: connections left in TIME_WAIT by a previous run must not count as "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CannotServeError(
                    f"port {port} on {host} is already in use (another Argilla? check "
                    f"`curation-argilla status --port {port}`). Stop it or pass --port."
                ) from error
            raise CannotServeError(f"cannot bind {host}:{port}: {error.strerror}") from error


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
        print(f"Argilla is starting at {_where(config)} (data: {config.data_dir})", flush=True)
        # uvicorn re-raises SIGTERM after its graceful shutdown; as an exception it still lets `finally` clean up.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(
            harden(argilla_server.app, config),
            host=config.host,
            port=config.port,
            log_level=options.log_level,
            # The UI and the client poll a lot; access logs would drown real messages.
            access_log=False,
        )
    finally:
        clear_frontend_copies(config)


def _where(config: LocalArgillaConfig) -> str:
    """The address actually bound; for every interface, also the URL to use on this machine."""
    if config.host in WILDCARD_HOSTS:
        return f"{config.bind_url}, every interface (on this machine: {config.url})"
    return config.bind_url
