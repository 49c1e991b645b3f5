"""The webhook receiver over real HTTP on loopback: only signed deliveries move a mark; the secret stays private."""

import json
import logging
import os
import time

import httpx
import pytest

from curation_assets.logic.webhook_events import secret_key, sign
from curation_assets.webhooks.marks import WebhookMarks
from curation_assets.webhooks.receiver import WebhookReceiver
from curation_assets.webhooks.secret import SECRET_ENV, WebhookSecretError, load_keys, save_secret

SECRET = "whsec_c2VjcmV0LWZvci10aGUtdGVzdHMtb25seQ=="


def delivery(body: dict, secret=SECRET, message_id="msg_1") -> tuple[dict, bytes]:
    content = json.dumps(body).encode()
    timestamp = int(time.time())
    signature = sign(secret_key(secret), message_id, timestamp, content)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}, content


SUBMITTED = {"type": "response.created", "data": {"status": "submitted", "record": {"dataset": {"name": "curation"}}}}


def test_only_a_signed_submission_moves_the_mark_and_nothing_logs_the_secret(tmp_path, caplog):
    marks = WebhookMarks(tmp_path / "marks")
    caplog.set_level(logging.DEBUG)
    with WebhookReceiver([secret_key(SECRET)], marks, port=0) as receiver:
        assert receiver.url.startswith("http://127.0.0.1:"), "loopback by default"
        forged_headers, body = delivery(SUBMITTED, secret="whsec_b3RoZXI=")
        forged = httpx.post(receiver.url, headers=forged_headers, content=body)
        assert forged.status_code == 401 and "no signature matches" in forged.json()["detail"]
        assert marks.read(["curation"]) == {}

        genuine_headers, body = delivery(SUBMITTED)
        assert httpx.post(receiver.url, headers=genuine_headers, content=body).json() == {"detail": "marked"}
        first = marks.read(["curation"])["curation"]
        replayed = httpx.post(receiver.url, headers=genuine_headers, content=body)
        assert replayed.json() == {"detail": "already received"} and marks.read(["curation"]) == {"curation": first}

        draft = {**SUBMITTED, "type": "response.updated", "data": {**SUBMITTED["data"], "status": "draft"}}
        draft_headers, body = delivery(draft, message_id="msg_2")
        assert httpx.post(receiver.url, headers=draft_headers, content=body).status_code == 200
        assert marks.read(["curation"]) == {"curation": first}, "a draft changes nothing published"
        assert httpx.get(receiver.url).status_code == 405
        assert receiver.counts == {"accepted": 2, "marked": 1, "rejected": 1}
    logged = caplog.text + "".join(path.read_text() for path in (tmp_path / "marks").iterdir())
    assert "c2VjcmV0" not in logged and "b3RoZXI" not in logged


def test_the_secret_comes_from_the_environment_or_a_file_only_its_owner_reads(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    file = tmp_path / "webhooks" / "secret"
    with pytest.raises(WebhookSecretError, match="register the webhook first"):
        load_keys(file)
    save_secret(SECRET, file)
    assert oct(file.stat().st_mode & 0o777) == "0o600"
    assert load_keys(file) == [secret_key(SECRET)]
    os.chmod(file, 0o644)
    with pytest.raises(WebhookSecretError, match="chmod 600") as refused:
        load_keys(file)
    assert "c2VjcmV0" not in str(refused.value)
    monkeypatch.setenv(SECRET_ENV, "whsec_b3RoZXI=")
    assert load_keys(file) == [secret_key("whsec_b3RoZXI=")], "the environment wins over the file"
