"""The request plumbing every Argilla caller shares: one key, one retrying transport, answers mapped to typed errors.

The pipeline's owner client and the annotator sessions (the web UI's calls, used by the
simulation and the tests) both go through `RestSession`, so a dropped connection or a busy
server is retried the same way wherever the call comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from .errors import (
    KEY_HINT,
    LOCAL_SERVER_HINT,
    ArgillaNotFoundError,
    ArgillaRequestError,
    ArgillaUnauthorizedError,
    ArgillaUnreachableError,
)
from .transport import RetryingTransport, RetryPolicy, is_transient_status, may_retry

RECORD_PAGE_SIZE = 1000  # the server's maximum for GET /datasets/{id}/records
LOG_BATCH_SIZE = 500  # the server's maximum records per bulk request


@dataclass(frozen=True)
class Connection:
    """Where the server is, with which key, and how patiently to talk to it."""

    api_url: str
    api_key: str
    timeout_seconds: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    record_page_size: int = RECORD_PAGE_SIZE
    log_batch_size: int = LOG_BATCH_SIZE

    def for_polling(self) -> Connection:
        """Short retries: a sensor tick must end within Dagster's 60 s, and the next tick retries anyway."""
        return replace(
            self,
            timeout_seconds=min(self.timeout_seconds, 15.0),
            retry=replace(
                self.retry,
                max_attempts=min(self.retry.max_attempts, 2),
                max_delay=min(self.retry.max_delay, 2.0),
                max_seconds=min(self.retry.max_seconds, 10.0),
            ),
        )


class RestSession:
    """JSON requests to one Argilla server with one API key; closes its connections when done (`with`, or `close()`)."""

    def __init__(
        self,
        connection: Connection,
        inner_transport: httpx.BaseTransport | None = None,
        log: Callable[[str], None] | None = None,
        before_first_request: Callable[[], None] | None = None,
        key_advice: str = f"set ARGILLA_API_KEY to the key of a user with the owner role ({KEY_HINT})",
    ):
        self.connection = connection
        self.key_advice = key_advice
        self._inner_transport = inner_transport
        self._log = log
        self._before_first_request = before_first_request
        self._http: httpx.Client | None = None

    @property
    def api_url(self) -> str:
        return self.connection.api_url

    def transport(self) -> RetryingTransport:
        """A retrying transport for this server (the argilla SDK's client is given one too)."""
        return RetryingTransport(self.api_url, self.connection.retry, log=self._log, inner=self._inner_transport)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            if self._before_first_request is not None:
                self._before_first_request()
            self._http = httpx.Client(
                base_url=self.api_url.rstrip("/"),
                headers={"X-Argilla-Api-Key": self.connection.api_key},
                timeout=self.connection.timeout_seconds,
                transport=self.transport(),
            )
        return self._http

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's JSON (None when empty); a typed ArgillaError naming the URL and what to do otherwise."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            # Only faults that are not worth retrying get here (e.g. a POST cut off mid-way).
            raise ArgillaUnreachableError(
                f"cannot reach Argilla at {self.api_url}: {method} {path} failed ({type(error).__name__}): {LOCAL_SERVER_HINT}"
            ) from error
        return self.answer_of(response, method, path)

    def answer_of(self, response: httpx.Response, method: str, path: str) -> Any:
        """The JSON of an answer to `method path` (None when empty), or the typed ArgillaError it calls for."""
        if response.status_code == 401:
            raise ArgillaUnauthorizedError(f"Argilla at {self.api_url} rejected the API key (401): {self.key_advice}")
        if response.status_code == 403:
            raise ArgillaUnauthorizedError(
                f"Argilla at {self.api_url} refused {method} {path} (403): {self.key_advice}"
            )
        if is_transient_status(response.status_code):
            tries = self.connection.retry.max_attempts if may_retry(method, status_code=response.status_code) else 1
            raise ArgillaUnreachableError(
                f"Argilla at {self.api_url} kept answering {response.status_code} to {method} {path} after "
                f"{tries} tries: {response.text[:300]}; check the server's log "
                "(for the embedded server: server.log in its data dir) and rerun"
            )
        if response.status_code == 404:
            raise ArgillaNotFoundError(
                f"Argilla at {self.api_url}: {method} {path} answered 404: {response.text[:300]}"
            )
        if response.is_error:
            raise ArgillaRequestError(
                f"Argilla at {self.api_url}: {method} {path} answered {response.status_code}: {response.text[:300]}",
                response.status_code,
            )
        return response.json() if response.content else None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self):
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
