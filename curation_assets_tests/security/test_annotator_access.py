"""An annotator's API key reaches their own shard and nothing else: not another annotator's, not the owner's endpoints.

Laid out as the pipeline lays it out (one workspace and dataset per annotator), on the real server.
Each row of the table is one request with ana's key and the status the server answers; a 200 for
her own dataset is the control that the key works at all.
"""

import httpx
import pandas as pd
import pytest

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets.argilla_adapter.mapping import to_argilla_records
from curation_assets.argilla_adapter.rest import Connection
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.argilla_helpers import DOLLY_LIKE_ROWS, annotator_account

pytestmark = pytest.mark.server

DATASET = "access_probe"


@pytest.fixture(scope="module")
def shards(argilla_server):
    """ana's and bruno's datasets with records; bruno has answered one of his."""
    argilla = ArgillaClient(Connection(argilla_server.url, argilla_server.owner_api_key))
    ids = {}
    for annotator, rows in (("ana", DOLLY_LIKE_ROWS[:3]), ("bruno", DOLLY_LIKE_ROWS[3:])):
        dataset = argilla.ensure_annotator_dataset(annotator, DATASET, curation_dataset_settings)
        argilla.upsert_records(dataset, to_argilla_records(pd.DataFrame(rows)))
        record = next(argilla.iter_records(dataset.id))
        workspace_ids = {
            workspace["name"]: workspace["id"] for workspace in argilla.request("GET", "/api/v1/me/workspaces")["items"]
        }
        ids[annotator] = {"dataset": dataset.id, "workspace": workspace_ids[annotator], "record": record["id"]}
    with AnnotatorSession(argilla_server.url, annotator_account(argilla_server, "bruno").api_key) as bruno:
        queued = bruno.queue(ids["bruno"]["dataset"], limit=1)[0][0]
        ids["bruno"]["response"] = bruno.respond(
            queued, "submitted", {"new-instruction": "bruno's", "new-response": "answer"}
        )["id"]
    owner = httpx.get(
        f"{argilla_server.url}/api/v1/me", headers={"X-Argilla-Api-Key": argilla_server.owner_api_key}
    ).json()
    ids["owner"] = owner["id"]
    return ids


def requests_by_ana(ids):
    """(what is tried, method, path, json body, status the server answers)."""
    mine, his = ids["ana"], ids["bruno"]
    answer = {"values": {"new-instruction": {"value": "x"}, "new-response": {"value": "y"}}, "status": "submitted"}
    return [
        ("control: search her own shard", "POST", f"/api/v1/me/datasets/{mine['dataset']}/records/search", {}, 200),
        ("read bruno's dataset", "GET", f"/api/v1/datasets/{his['dataset']}", None, 403),
        ("search bruno's shard as the UI does", "POST", f"/api/v1/me/datasets/{his['dataset']}/records/search", {}, 403),
        ("list bruno's records", "GET", f"/api/v1/datasets/{his['dataset']}/records", None, 403),
        ("read one of bruno's records", "GET", f"/api/v1/records/{his['record']}", None, 403),
        ("answer one of bruno's records", "POST", f"/api/v1/records/{his['record']}/responses", answer, 403),
        ("overwrite bruno's answer", "PUT", f"/api/v1/responses/{his['response']}", answer, 403),
        ("delete bruno's answer", "DELETE", f"/api/v1/responses/{his['response']}", None, 403),
        ("bruno's progress", "GET", f"/api/v1/datasets/{his['dataset']}/progress", None, 403),
        ("bruno's metrics", "GET", f"/api/v1/me/datasets/{his['dataset']}/metrics", None, 403),
        ("bruno's workspace members", "GET", f"/api/v1/workspaces/{his['workspace']}/users", None, 403),
        ("owner: list users", "GET", "/api/v1/users", None, 403),
        ("owner: read the owner (and so his API key)", "GET", f"/api/v1/users/{ids['owner']}", None, 403),
        ("owner: create a user", "POST", "/api/v1/users",
         {"first_name": "m", "username": "mallory", "password": "mallory-pass-1", "role": "owner"}, 403),
        ("owner: create a workspace", "POST", "/api/v1/workspaces", {"name": "ana-own"}, 403),
        ("owner: list all records of her own dataset", "GET", f"/api/v1/datasets/{mine['dataset']}/records", None, 403),
        ("owner: delete her own dataset", "DELETE", f"/api/v1/datasets/{mine['dataset']}", None, 403),
        ("owner: add herself to bruno's workspace", "POST", f"/api/v1/workspaces/{his['workspace']}/users", {"user_id": ids["owner"]}, 403),
    ]  # fmt: skip


def test_an_annotator_key_reaches_only_its_own_shard(argilla_server, shards):
    ana = {"X-Argilla-Api-Key": annotator_account(argilla_server, "ana").api_key}
    answered = []
    with httpx.Client(base_url=argilla_server.url, headers=ana, timeout=30) as client:
        table = requests_by_ana(shards)
        for what, method, path, body, _ in table:
            answered.append((what, client.request(method, path, json=body).status_code))
        visible = client.get("/api/v1/me/datasets").json()["items"]
        workspaces = [workspace["name"] for workspace in client.get("/api/v1/me/workspaces").json()["items"]]
    assert answered == [(what, status) for what, _, _, _, status in table]
    assert shards["bruno"]["dataset"] not in {dataset["id"] for dataset in visible}
    # Other tests on the shared server add ana to workspaces of their own; bruno's is never among hers.
    assert "ana" in workspaces and "bruno" not in workspaces, "she sees her own workspace, never bruno's"

    owner = {"X-Argilla-Api-Key": argilla_server.owner_api_key}
    bruno_answer = httpx.get(f"{argilla_server.url}/api/v1/records/{shards['bruno']['record']}", headers=owner,
                             params={"include": "responses"}).json()["responses"]  # fmt: skip
    assert [response["values"]["new-instruction"]["value"] for response in bruno_answer] == ["bruno's"], "untouched"
