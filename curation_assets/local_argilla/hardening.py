"""Security around the unmodified argilla_server, applied by the launcher: an ASGI layer and in-process patches.

argilla-server 2.8 as shipped parses any body before it checks credentials, echoes every
Origin with credentials, can be framed by any page, answers under any Host name, logs
rejected input (passwords included) in full, lets anyone guess passwords at full speed, and
keeps a session token valid for 24 h after its password changed. `harden()` wraps the app
so that none of this holds; nothing on disk is patched.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import os
import time
import traceback
from urllib.parse import parse_qs

from ..server_identity import IDENTITY_PATH, identity_proof
from ..web_security import (
    LOOPBACK_NAMES,
    SAFE_METHODS,
    WILDCARD_HOSTS,
    Receive,
    Scope,
    Send,
    header,
    host_is_allowed,
    is_cross_origin,
    send_json,
    with_response_headers,
)
from .config import LocalArgillaConfig, bracketed, persistent_auth_secret

_LOGGER = logging.getLogger("curation_assets.local_argilla.hardening")

MAX_BODY_ENV = "CURATION_ARGILLA_MAX_BODY_MB"
ALLOWED_HOSTS_ENV = "CURATION_ARGILLA_ALLOWED_HOSTS"
# Anonymous requests have nothing bigger to send than the sign-in form.
ANONYMOUS_BODY_LIMIT = 64 * 1024
# The largest legitimate request: a bulk upsert of 500 records (the server's maximum), each with
# 5 text fields and 3 suggested answers of up to 100,000 characters (the loader's limit), plus a
# quarter for JSON structure, escapes, metadata and responses. Non-ASCII text is escaped to up to
# 6 bytes a character by the client, so a batch of mostly non-Latin text may need more: raise it.
DEFAULT_MAX_BODY_MB = 500 * 8 * 100_000 * 5 // 4 // 1_000_000
SIGN_IN_PATH = "/api/v1/token"
FAILED_SIGN_INS_PER_ACCOUNT = 5
FAILED_SIGN_INS_PER_ADDRESS = 20
# Sign-ins from one address still waiting for their answer. Counted apart from its failures: a team
# behind one address (an office's NAT, or loopback) signs in at once, and each bcrypt check takes a
# while on a busy server, so counting those as failures refused the 21st colleague (bench/load.py at
# 100 annotators). The cap still bounds a spray of parallel guesses at many accounts.
SIGN_INS_IN_FLIGHT_PER_ADDRESS = 200
SIGN_IN_WINDOW_SECONDS = 300
# Bounds the throttle's memory when the usernames tried are random.
MAX_THROTTLED_KEYS = 100_000
FRAME_HEADERS = {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}
# Signed into each session token: a token stops working when its user's password hash changes.
PASSWORD_CLAIM = "curation_password_fingerprint"


def prepare_environment(config: LocalArgillaConfig) -> None:
    """Settings read when argilla_server is imported: CORS for the server's own origins only (not `*` with credentials)."""
    origins = [f"http://{bracketed(name)}:{config.port}" for name in sorted(allowed_host_names(config))]
    os.environ["ARGILLA_CORS_ORIGINS"] = json.dumps(origins)


def harden(app, config: LocalArgillaConfig):
    """Patch the imported server in-process and return `app` behind the hardening ASGI layer."""
    secret = persistent_auth_secret(config)
    _end_sessions_when_the_password_changes(secret)
    _log_errors_without_request_input()
    return HardeningMiddleware(app, config, secret, max_body_bytes())


def max_body_bytes() -> int:
    configured = os.environ.get(MAX_BODY_ENV)
    if configured is None:
        return DEFAULT_MAX_BODY_MB * 1_000_000
    try:
        megabytes = float(configured)
    except ValueError:
        megabytes = 0
    if megabytes <= 0:
        raise ValueError(f"{MAX_BODY_ENV} must be a positive number of megabytes, not {configured!r}")
    return int(megabytes * 1_000_000)


def allowed_host_names(config: LocalArgillaConfig) -> set[str]:
    """Host names the server answers to: loopback, the bound address, and CURATION_ARGILLA_ALLOWED_HOSTS."""
    names = set(LOOPBACK_NAMES)
    if config.host not in WILDCARD_HOSTS:
        names.add(config.host.lower())
    names.update(name.strip().lower() for name in os.environ.get(ALLOWED_HOSTS_ENV, "").split(",") if name.strip())
    return names


class HardeningMiddleware:
    """Host check, same-origin writes, identity proof, body limits, sign-in throttle, anti-framing headers."""

    def __init__(self, app, config: LocalArgillaConfig, auth_secret: str, max_body: int):
        self.app = app
        self.config = config
        self.auth_secret = auth_secret
        self.max_body = max_body
        self.host_names = allowed_host_names(config)
        self.throttle = SignInThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_response_headers(send, FRAME_HEADERS)
        if not host_is_allowed(scope, self.host_names, self.config.host):
            await send_json(
                send, 400,
                f"unknown Host header: this server answers to {', '.join(sorted(self.host_names))} "
                f"(add a name to {ALLOWED_HOSTS_ENV} where it is served under another)",
            )  # fmt: skip
            return
        if scope["method"] not in SAFE_METHODS and is_cross_origin(scope):
            await send_json(send, 403, "requests that change data are accepted from this server's own pages only")
            return
        if scope["path"] == IDENTITY_PATH:
            await self._prove_identity(scope, send)
            return
        receive = await self._within_body_limits(scope, receive, send)
        if receive is None:
            return
        if scope["path"] == SIGN_IN_PATH and scope["method"] == "POST":
            await self._sign_in(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _prove_identity(self, scope: Scope, send: Send) -> None:
        nonce = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("nonce", [""])[0]
        proof = identity_proof(self.auth_secret, self.config.port, nonce)
        if proof is None:
            await send_json(send, 400, "nonce must be 32 to 128 lower-case hex digits")
            return
        body = json.dumps({"proof": proof}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    async def _within_body_limits(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """`receive` for the app once the body is known to fit, checked before any of it is parsed; None after refusing."""
        declared = header(scope, "content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_json(send, 400, "invalid Content-Length")
                return None
            if not await self._body_size_allowed(scope, int(declared), send):
                return None
            return receive
        if "chunked" not in (header(scope, "transfer-encoding") or "").lower():
            return receive
        # A body of unknown length is read here, and refused as soon as it is too big for this caller.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _replay([], disconnected=True)
            chunk = message.get("body", b"")
            grown = size + len(chunk)
            if grown > ANONYMOUS_BODY_LIMIT >= size or grown > self.max_body:
                if not await self._body_size_allowed(scope, grown, send):
                    return None
            size = grown
            chunks.append(chunk)
            more = message.get("more_body", False)
        return _replay(chunks)

    async def _body_size_allowed(self, scope: Scope, size: int, send: Send) -> bool:
        if size > self.max_body:
            await send_json(
                send, 413,
                f"request body of {size:,} bytes is over this server's limit of {self.max_body:,} bytes; send fewer "
                f"records per request, or raise {MAX_BODY_ENV} (megabytes) where the server is started",
            )  # fmt: skip
            return False
        if size > ANONYMOUS_BODY_LIMIT and not await _has_valid_credentials(scope):
            await send_json(
                send, 401,
                f"a request body over {ANONYMOUS_BODY_LIMIT // 1024} KiB needs a valid API key or session token",
            )  # fmt: skip
            return False
        return True

    async def _sign_in(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        username = await _form_username(scope, body)
        address = (scope.get("client") or ("unknown",))[0]
        wait = self.throttle.seconds_until_allowed(username, address)
        if wait:
            await send_json(
                send, 429, f"too many failed sign-ins for this account or from this address: try again in {wait} s",
                headers=[("Retry-After", str(wait))],
            )  # fmt: skip
            return
        # Counted before the password is checked, so that parallel guesses cannot slip past the limit.
        attempt = self.throttle.record_attempt(username, address)
        status = {}

        async def send_noting_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, _replay([body]), send_noting_status)
        finally:
            failed = status.get("code") == 401
            self.throttle.settle_attempt(attempt, failed=failed)
        if not failed:
            return
        failures = self.throttle.failures_of(username)
        who = f"as {username!r}" if await _is_known_username(username) else "with an unknown username"
        _LOGGER.warning(
            "failed sign-in %s from %s (%d of %d allowed for the account in %d s)",
            who, address, failures, FAILED_SIGN_INS_PER_ACCOUNT, SIGN_IN_WINDOW_SECONDS,
        )  # fmt: skip
        if failures == FAILED_SIGN_INS_PER_ACCOUNT:
            _LOGGER.warning("sign-ins %s are refused for up to %d s", who, SIGN_IN_WINDOW_SECONDS)


class SignInThrottle:
    """Failed sign-ins in a sliding window, per account and per client address, and sign-ins in flight per address.

    An account's attempts count as failures from the moment they arrive (parallel guesses at one
    account cannot slip past its limit); an address's count once they failed, and its attempts in
    flight are capped on their own.
    """

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.attempts: dict[tuple[str, str], collections.deque[float]] = {}
        self.in_flight: collections.Counter[str] = collections.Counter()

    def seconds_until_allowed(self, username: str, address: str) -> int:
        now = self.clock()
        waits = [
            self._wait(("account", username), FAILED_SIGN_INS_PER_ACCOUNT, now),
            self._wait(("address", address), FAILED_SIGN_INS_PER_ADDRESS, now),
            1 if self.in_flight[address] >= SIGN_INS_IN_FLIGHT_PER_ADDRESS else 0,
        ]
        return max(waits)

    def record_attempt(self, username: str, address: str) -> tuple:
        now = self.clock()
        self.attempts.setdefault(("account", username), collections.deque()).append(now)
        self.in_flight[address] += 1
        while len(self.attempts) > MAX_THROTTLED_KEYS:
            del self.attempts[next(iter(self.attempts))]
        return username, address, now

    def settle_attempt(self, attempt: tuple, failed: bool) -> None:
        """The attempt got its answer: a failure counts against its address too; a success counts nowhere."""
        username, address, moment = attempt
        self.in_flight[address] -= 1
        if self.in_flight[address] <= 0:
            del self.in_flight[address]
        if failed:
            self.attempts.setdefault(("address", address), collections.deque()).append(self.clock())
        elif moment in self.attempts.get(("account", username), ()):
            self.attempts[("account", username)].remove(moment)

    def failures_of(self, username: str) -> int:
        return len(self._recent(("account", username), self.clock()))

    def _wait(self, key: tuple[str, str], allowed: int, now: float) -> int:
        recent = self._recent(key, now)
        if len(recent) < allowed:
            return 0
        return max(1, int(recent[-allowed] + SIGN_IN_WINDOW_SECONDS - now) + 1)

    def _recent(self, key: tuple[str, str], now: float) -> collections.deque[float]:
        recent = self.attempts.get(key, collections.deque())
        while recent and recent[0] <= now - SIGN_IN_WINDOW_SECONDS:
            recent.popleft()
        if not recent:
            self.attempts.pop(key, None)
        return recent


def _replay(chunks: list[bytes], disconnected: bool = False) -> Receive:
    """A `receive` that hands the app a body read earlier, then whatever the client does next."""
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages.append(
        {"type": "http.disconnect"} if disconnected else {"type": "http.request", "body": b"", "more_body": False}
    )

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    return receive


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _form_username(scope: Scope, body: bytes) -> str:
    from starlette.requests import Request

    request = Request({**scope, "state": {}}, _replay([body]))
    try:
        form = await request.form()
    except Exception:  # an unparsable form: the server answers it with 422, and it counts for the address
        return ""
    username = form.get("username")
    return username if isinstance(username, str) else ""


async def _has_valid_credentials(scope: Scope) -> bool:
    """The request's API key or session token belongs to a user: what argilla_server checks, with the headers only."""
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.errors import UnauthorizedError
    from argilla_server.security.authentication.provider import AuthenticationProvider
    from starlette.requests import Request

    request = Request({**scope, "state": {}})
    async with AsyncSessionLocal() as db:
        request.state.db = db
        for backend in AuthenticationProvider.backends:
            try:
                if await backend.authenticate(request):
                    return True
            except UnauthorizedError:
                return False
    return False


async def _is_known_username(username: str) -> bool:
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal

    if not username:
        return False
    async with AsyncSessionLocal() as db:
        return await accounts.get_user_by_username(db, username) is not None


def _end_sessions_when_the_password_changes(auth_secret: str) -> None:
    """Sign a fingerprint of the user's password hash into each session token, and check it on every request.

    argilla_server's tokens hold only the username and expire after 24 h; a password change
    (in the UI, over the API, or by `curation-argilla rotate`) did not end them. Now it does:
    a token whose fingerprint no longer matches is refused like an unknown one. Tokens issued
    before this check existed carry no fingerprint and are refused too (sign in again once).
    """
    from argilla_server.contexts import accounts
    from argilla_server.security.authentication.db.bearer_token_backend import BearerTokenAuthenticationBackend
    from argilla_server.security.authentication.jwt import JWT
    from argilla_server.security.authentication.userinfo import UserInfo
    from starlette.authentication import AuthCredentials

    key = hmac.new(auth_secret.encode(), b"curation-assets password fingerprint v1", hashlib.sha256).digest()

    def fingerprint(password_hash: str) -> str:
        return hmac.new(key, password_hash.encode(), hashlib.sha256).hexdigest()

    def generate_user_token(user) -> str:
        claims = {"identity": str(user.id), "name": user.first_name, "username": user.username, "role": user.role}
        return JWT.create(UserInfo(**claims, **{PASSWORD_CLAIM: fingerprint(user.password_hash)}))

    async def authenticate(backend, request):
        credentials = await backend.scheme(request)
        if not credentials:
            return None
        claims = JWT.decode(credentials.credentials)
        user = await accounts.get_user_by_username(request.state.db, claims.get("username"))
        if user is None or not hmac.compare_digest(
            str(claims.get(PASSWORD_CLAIM, "")), fingerprint(user.password_hash)
        ):
            return None
        return AuthCredentials(), UserInfo(
            username=user.username, name=user.first_name, role=user.role, identity=str(user.id)
        )

    accounts.generate_user_token = generate_user_token
    BearerTokenAuthenticationBackend.authenticate = authenticate


def _log_errors_without_request_input() -> None:
    """Log unexpected errors by type, place and (for validation) field, never with the request's values.

    argilla_server logs every error it did not raise itself with its full message: a 422 for a
    user created with a too-short password logged the password, and a 50 MB invalid field grew
    the log by 100 MB. The errors still reach the client as before.
    """
    from argilla_server.errors.base_errors import BadRequestError, GenericServerError, ServerError, ValidationError
    from argilla_server.errors.error_handler import APIErrorHandler
    from fastapi.exceptions import RequestValidationError

    def exception_to_argilla_error(cls, error: Exception) -> ServerError:
        if isinstance(error, ServerError):
            return error
        logging.getLogger("argilla").error("%s", describe_without_input(error))
        if isinstance(error, RequestValidationError):
            return ValidationError(error)
        if isinstance(error, AssertionError):
            return BadRequestError(str(error))
        return GenericServerError(error=error)

    APIErrorHandler._exception_to_argilla_error = classmethod(exception_to_argilla_error)


def describe_without_input(error: Exception) -> str:
    """An error's type, and where it happened or which fields failed validation, with no value from the request."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        places = [
            f"{'.'.join(_short(part) for part in item.get('loc', ()))}: {item.get('type', '?')}"
            for item in errors()[:20]
            if isinstance(item, dict)
        ]
        return f"request rejected, {type(error).__name__} ({len(errors())} error(s)): {'; '.join(places)}"
    frames = "".join(traceback.format_tb(error.__traceback__))
    return f"unexpected {type(error).__module__}.{type(error).__qualname__} (its message may quote the request: not logged)\n{frames}"


def _short(part) -> str:
    # Field names in a location can be keys the client chose: shortened, and repr keeps them on one line.
    return str(part) if isinstance(part, int) else repr(str(part)[:40])
