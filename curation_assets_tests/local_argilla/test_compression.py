"""Answers to clients on this machine come uncompressed (speedup loopback-compression); others still get Brotli."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.server


def _users(server, **headers) -> httpx.Response:
    answer = httpx.get(
        f"{server.url}/api/v1/users",
        headers={"X-Argilla-Api-Key": server.owner_api_key, "Accept-Encoding": "br, gzip", **headers},
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.content) > 512  # over argilla-server's threshold for compressing
    return answer


def test_loopback_clients_get_the_same_answer_uncompressed(argilla_server, argilla_server_without_speedups):
    embedded, shipped = _users(argilla_server), _users(argilla_server_without_speedups)
    assert "content-encoding" not in embedded.headers
    assert shipped.headers["content-encoding"] == "br"
    assert [user["username"] for user in embedded.json()["items"]] == [
        user["username"] for user in shipped.json()["items"]
    ]


def test_clients_elsewhere_still_get_brotli(argilla_server):
    # uvicorn takes the client's address from X-Forwarded-For when a proxy on this machine sends it.
    assert _users(argilla_server, **{"X-Forwarded-For": "203.0.113.9"}).headers["content-encoding"] == "br"
