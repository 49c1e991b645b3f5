"""Stop and start again on the same data dir: data, statuses, progress and UI logins survive."""

from __future__ import annotations

import httpx
import pytest

from curation_assets.local_argilla.process import ArgillaServerProcess
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.argilla_helpers import (
    DOLLY_LIKE_ROWS,
    annotator_account,
    as_records,
    create_curation_dataset,
    owner_client,
    stored_records,
)

pytestmark = pytest.mark.server


def ui_login(url: str, username: str, password: str) -> str:
    response = httpx.post(f"{url}/api/v1/token", data={"username": username, "password": password})
    response.raise_for_status()
    return response.json()["access_token"]


def test_restart_keeps_data_statuses_progress_and_logins(fresh_argilla_server):
    server = fresh_argilla_server
    dataset = create_curation_dataset(owner_client(server), "ana", "ana", "survives_restart")
    dataset.records.log(as_records(DOLLY_LIKE_ROWS))
    ana = annotator_account(server, "ana")
    with AnnotatorSession(server.url, ana.api_key) as session:
        queue, _ = session.queue(str(dataset.id))
        session.respond(queue[0], "submitted", {"new-instruction": "kept?", "new-response": "kept."})
        session.respond(queue[1], "discarded")
        session.respond(queue[2], "draft", {"new-response": "later"})
        progress_before = session.progress(str(dataset.id))
    token = ui_login(server.url, "ana", ana.password)
    assert any(server.config.frontend_tmp_dir.iterdir()), "the web UI copy lives under the data dir while serving"

    server.stop()
    assert not server.config.frontend_tmp_dir.exists(), "stopping removes the web UI copy"
    restarted = ArgillaServerProcess(server.config).start()
    try:
        bearer = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{restarted.url}/api/v1/me", headers=bearer)
        assert me.status_code == 200 and me.json()["username"] == "ana", "a UI session survives the restart"
        assert ui_login(restarted.url, "ana", ana.password)

        with AnnotatorSession(restarted.url, ana.api_key) as session:
            assert session.progress(str(dataset.id)) == progress_before
            statuses = {
                status: [record.external_id for record in session.queue(str(dataset.id), status=status)[0]]
                for status in ("submitted", "discarded", "draft")
            }
        assert statuses == {"submitted": ["0"], "discarded": ["1"], "draft": ["2"]}
        records = stored_records(restarted, dataset.id)
        by_id = {record["external_id"]: record for record in records}
        assert len(by_id) == len(DOLLY_LIKE_ROWS)
        assert by_id["0"]["responses"][0]["values"]["new-response"]["value"] == "kept."
        assert by_id["1"]["responses"][0]["status"] == "discarded"
    finally:
        restarted.stop()
