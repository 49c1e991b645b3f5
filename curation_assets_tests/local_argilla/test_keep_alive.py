"""The server keeps an idle connection open longer than clients keep it (httpx: 5 s), so a reused one never races its
closing."""

from __future__ import annotations

import http.client
import time
from urllib.parse import urlsplit

import pytest

from curation_assets.local_argilla.server import KEEP_ALIVE_SECONDS

pytestmark = pytest.mark.server

HTTPX_KEEPALIVE_EXPIRY_SECONDS = 5.0  # httpx.Limits' default: how long httpx reuses an idle connection


def test_a_connection_idle_past_the_clients_expiry_still_answers(argilla_server):
    assert KEEP_ALIVE_SECONDS > HTTPX_KEEPALIVE_EXPIRY_SECONDS
    address = urlsplit(argilla_server.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    headers = {"X-Argilla-Api-Key": argilla_server.owner_api_key}
    try:
        connection.request("GET", "/api/v1/me", headers=headers)
        first = connection.getresponse()
        assert first.status == 200, first.read()
        first.read()
        socket_before = connection.sock
        # Past uvicorn's default keep-alive (5 s), which closed the connection here before.
        time.sleep(HTTPX_KEEPALIVE_EXPIRY_SECONDS + 1.5)
        connection.request("GET", "/api/v1/me", headers=headers)
        second = connection.getresponse()
        assert second.status == 200, second.read()
        assert connection.sock is socket_before, "answered on the same connection, not a new one"
    finally:
        connection.close()
