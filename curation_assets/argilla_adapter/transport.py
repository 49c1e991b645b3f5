"""Retries for every HTTP call to Argilla: transient faults are retried with backoff, the rest fail at once.

One httpx transport serves both our raw REST client and the argilla SDK's client, so a server
that restarts or drops a connection in the middle of a shard push is retried the same way
wherever the call comes from. Only the method, the path and the cause are logged: never headers
(they carry the API key) nor bodies.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from .errors import LOCAL_SERVER_HINT, ArgillaUnreachableError

# Safe to repeat: the same request twice leaves the server as once (records are upserted by id).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# For POST and PATCH only faults where the server cannot have acted are retried: repeating a
# request it may have applied could create a second workspace or dataset field.
NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout)
NOT_PROCESSED_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: at most `max_attempts` tries and `max_seconds` in all, waits doubling from `base_delay`."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_seconds: float = 60.0

    def delay(self, retry_number: int, randomness: random.Random | None = None) -> float:
        """Exponential backoff with jitter: between half and all of base·2^(n-1), capped.

        The jitter spreads the retries of parallel shard pushes; the floor of one half gives a
        restarting server time to come back.
        """
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry_number - 1))
        return ceiling * (randomness or random).uniform(0.5, 1.0)


def is_transient_status(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def may_retry(method: str, error: Exception | None = None, status_code: int | None = None) -> bool:
    """Whether this failure of this request is worth another try (never a 4xx other than 429)."""
    if error is not None:
        if not isinstance(error, httpx.TransportError):
            return False
        return method in IDEMPOTENT_METHODS or isinstance(error, NOT_SENT_ERRORS)
    if status_code is None or not is_transient_status(status_code):
        return False
    return method in IDEMPOTENT_METHODS or status_code in NOT_PROCESSED_STATUSES


class RetryingTransport(httpx.BaseTransport):
    """Wraps a plain transport; retries transient failures, then raises ArgillaUnreachableError or returns the last answer."""

    def __init__(
        self,
        api_url: str,
        policy: RetryPolicy,
        log: Callable[[str], None] | None = None,
        inner: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.api_url = api_url
        self.policy = policy
        self.log = log or logging.getLogger(__name__).warning
        self.inner = inner or httpx.HTTPTransport()
        self.sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            error: httpx.TransportError | None = None
            response: httpx.Response | None = None
            try:
                response = self.inner.handle_request(request)
                # Read the body here: a server dying while it sends the answer must be retried too.
                response.read()
            except httpx.TransportError as caught:
                error, response = caught, None
            if response is not None and not may_retry(request.method, status_code=response.status_code):
                return response
            if error is not None and not may_retry(request.method, error=error):
                raise error
            cause = type(error).__name__ if error is not None else f"HTTP {response.status_code}"
            wait = self._wait(attempt, response)
            elapsed = time.monotonic() - started
            if attempt >= self.policy.max_attempts or elapsed + wait > self.policy.max_seconds:
                if response is not None:
                    return response
                raise ArgillaUnreachableError(
                    f"cannot reach Argilla at {self.api_url}: {request.method} {request.url.path} failed "
                    f"{attempt} time(s) over {elapsed:.1f} s (last: {cause}: {error}); {LOCAL_SERVER_HINT}, "
                    "then rerun: records are upserted by id, so nothing is duplicated"
                ) from error
            if response is not None:
                response.close()
            self.log(
                f"Argilla at {self.api_url}: {request.method} {request.url.path} failed ({cause}); "
                f"retry {attempt} of {self.policy.max_attempts - 1} in {wait:.1f} s"
            )
            self.sleep(wait)

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        wait = self.policy.delay(attempt)
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.isdigit():
            # The server knows best when it will take requests again; still within our cap.
            wait = min(max(wait, float(retry_after)), self.policy.max_delay)
        return wait

    def close(self) -> None:
        self.inner.close()
