"""Many requests at once never exhaust the server's SQLite connection pool.

Opening a dataset, the web UI asks for every metadata property's metrics at once; each such request
holds its own database connection while the search engine reads the metrics on a second one. With
SQLAlchemy's default pool (5 + 10 overflow), 15 of them in flight held every connection and waited for
another: the server stalled, its core idle, until the pool's 30 s timeout failed them with HTTP 500
("QueuePool limit of size 5 overflow 10 reached"). bench/load.py found it at 100 annotators; this test
fails that way without `runtime._give_every_sqlite_request_a_connection`.
"""

from __future__ import annotations

import asyncio

import argilla as rg
import httpx
import pytest

from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets_tests.argilla_helpers import DOLLY_LIKE_ROWS, annotator_account, as_records, owner_client

pytestmark = pytest.mark.server

AT_ONCE = 48  # three times the default pool's 15 connections


def test_a_burst_of_metadata_metrics_far_beyond_the_default_pool_is_answered(argilla_server):
    client = owner_client(argilla_server)
    workspace = rg.Workspace(name="connection_pool", client=client).create()
    workspace.add_user(client.users(username="ana"))
    dataset = rg.Dataset(
        name="connection_pool", workspace=workspace, settings=curation_dataset_settings(), client=client
    ).create()
    dataset.records.log(as_records(DOLLY_LIKE_ROWS))
    headers = {"X-Argilla-Api-Key": annotator_account(argilla_server, "ana").api_key}
    properties = httpx.get(f"{argilla_server.url}/api/v1/me/datasets/{dataset.id}/metadata-properties", headers=headers)
    paths = [f"/api/v1/metadata-properties/{item['id']}/metrics" for item in properties.json()["items"]]
    assert paths, "the curation dataset declares metadata properties"

    async def open_at_once() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=AT_ONCE)
        async with httpx.AsyncClient(base_url=argilla_server.url, headers=headers, timeout=90, limits=limits) as http:
            return await asyncio.gather(*(http.get(paths[index % len(paths)]) for index in range(AT_ONCE)))

    answers = asyncio.run(open_at_once())
    assert [answer.status_code for answer in answers] == [200] * AT_ONCE, {
        answer.status_code: answer.text[:300] for answer in answers if answer.status_code != 200
    }
