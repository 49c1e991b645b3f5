"""The Argilla connection as Dagster configuration: a thin resource that hands out an `ArgillaClient`."""

from __future__ import annotations

import dagster as dg
import httpx
from pydantic import Field, PrivateAttr

from ..argilla_adapter.client import ArgillaClient
from ..argilla_adapter.rest import LOG_BATCH_SIZE, RECORD_PAGE_SIZE, Connection
from ..argilla_adapter.transport import RetryPolicy

# Dagster's concurrency pool of the assets that write to Argilla (annotator_shards, review_shards), across every
# run and project: the team profile's instance limits it (docs/team.md), so that a re-plan that re-pushes many
# shards at once queues its pushes instead of loading the server the annotators are working on.
ARGILLA_WRITES_POOL = "argilla_writes"


class ArgillaResource(dg.ConfigurableResource):
    """An Argilla server reached with an owner's API key; the client is built on first use and closed after the step."""

    api_url: str = Field(description="Base URL of the Argilla server, e.g. http://127.0.0.1:6900")
    api_key: str = Field(description="API key of a user with the owner role")
    timeout_seconds: float = Field(default=120.0, description="Per-request timeout")
    retry_attempts: int = Field(
        default=6,
        ge=1,
        description="Tries per request on transient faults (connection lost, timeout, 5xx, 429); 1 = no retry",
    )
    retry_base_delay_seconds: float = Field(
        default=0.5, ge=0, description="First wait between tries; doubles each time, with jitter"
    )
    retry_max_delay_seconds: float = Field(default=8.0, ge=0, description="Longest single wait between tries")
    retry_budget_seconds: float = Field(
        default=60.0, ge=0, description="Give up retrying a request after this long in all"
    )
    record_page_size: int = Field(
        default=RECORD_PAGE_SIZE, ge=1, le=RECORD_PAGE_SIZE, description="Records per page when reading"
    )
    log_batch_size: int = Field(
        default=LOG_BATCH_SIZE, ge=1, le=LOG_BATCH_SIZE, description="Records per bulk upsert request"
    )

    _client: ArgillaClient | None = PrivateAttr(default=None)

    def connection(self) -> Connection:
        retry = RetryPolicy(
            max_attempts=self.retry_attempts,
            base_delay=self.retry_base_delay_seconds,
            max_delay=self.retry_max_delay_seconds,
            max_seconds=self.retry_budget_seconds,
        )
        return Connection(
            api_url=self.api_url,
            api_key=self.api_key,
            timeout_seconds=self.timeout_seconds,
            retry=retry,
            record_page_size=self.record_page_size,
            log_batch_size=self.log_batch_size,
        )

    def network(self) -> httpx.BaseTransport | None:
        """What carries the requests under the retries (None: httpx's own); tests wrap it to inject faults."""
        return None

    @property
    def client(self) -> ArgillaClient:
        if self._client is None:
            self._client = ArgillaClient(
                self.connection(), self.network(), log=dg.get_dagster_logger("argilla").warning
            )
        return self._client

    def polling_client(self) -> ArgillaClient:
        """A client with short retries for a sensor tick; the caller closes it (`with`)."""
        return ArgillaClient(
            self.connection().for_polling(), self.network(), log=dg.get_dagster_logger("argilla").warning
        )

    def teardown_after_execution(self, context) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def argilla_client(context, resource_key: str) -> ArgillaClient:
    """The client of the project's Argilla resource, in an asset or check run by Dagster."""
    resource: ArgillaResource = getattr(context.resources, resource_key)
    return resource.client
