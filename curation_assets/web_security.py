"""ASGI helpers shared by the guards in front of the embedded Argilla and the Dagster webserver.

Both serve a browser UI on a local port, so both must refuse what a page from elsewhere can
make a browser send: requests under a foreign Host name (DNS rebinding: another site's name
resolving to this machine) and state-changing requests from another origin (CSRF).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def header(scope: Scope, name: str) -> str | None:
    """A request header (the first, if repeated), decoded as latin-1 as HTTP defines."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def host_name(netloc: str | None) -> str | None:
    """The host part of a Host header or an origin's netloc, lower-cased, without port or brackets."""
    if not netloc:
        return None
    try:
        return urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None


def host_is_allowed(scope: Scope, allowed_names: Iterable[str], bound_host: str) -> bool:
    """The Host header names this server: one of `allowed_names`, or, when bound to every interface, the address the
    connection arrived on."""
    name = host_name(header(scope, "host"))
    if name is None:
        return False
    if name in allowed_names:
        return True
    local_address = (scope.get("server") or (None,))[0]
    return bound_host in WILDCARD_HOSTS and name == local_address


def is_cross_origin(scope: Scope) -> bool:
    """The browser says the request comes from a page of another origin (or from an opaque one, `Origin: null`)."""
    origin = header(scope, "origin")
    if origin is None:
        # Browsers send Origin with every cross-origin request that can change state; this covers older ones.
        return header(scope, "sec-fetch-site") == "cross-site"
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != (header(scope, "host") or "").lower()


async def send_json(send: Send, status: int, detail: str, headers: Iterable[tuple[str, str]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    response_headers += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


def with_response_headers(send: Send, extra: dict[str, str]) -> Send:
    """`send` that adds `extra` to the response's headers, unless the app set them itself."""
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]

    async def send_with_headers(message: dict) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            message = {
                **message,
                "headers": [*message.get("headers", []), *(h for h in encoded if h[0] not in present)],
            }
        await send(message)

    return send_with_headers
