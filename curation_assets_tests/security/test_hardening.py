"""The embedded server's limits and headers, each checked with real requests against a real server."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import argilla as rg
import httpx
import pytest

from curation_assets.local_argilla.hardening import (
    ANONYMOUS_BODY_LIMIT,
    DEFAULT_MAX_BODY_MB,
    FAILED_SIGN_INS_PER_ACCOUNT,
    FAILED_SIGN_INS_PER_ADDRESS,
    MAX_BODY_ENV,
    SIGN_IN_WINDOW_SECONDS,
    SIGN_INS_IN_FLIGHT_PER_ADDRESS,
    SignInThrottle,
)
from curation_assets.local_argilla.process import free_port, start_embedded_argilla
from curation_assets_tests.argilla_helpers import annotator_account, create_curation_dataset, owner_client
from curation_assets_tests.browser import headless_page

pytestmark = pytest.mark.server
SHIPPED_DOLLY = Path(__file__).resolve().parents[2] / "curation_assets" / "data" / "databricks-dolly-15k-sample.jsonl"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own: the sign-in test locks an account out for minutes."""
    started = start_embedded_argilla(tmp_path_factory.mktemp("hardened"), annotator_names=["ana", "bruno"])
    yield started
    started.stop()


def owner_headers(server) -> dict:
    return {"X-Argilla-Api-Key": server.owner_api_key}


def resident_memory_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def server_log(server, once_it_holds: str = "") -> str:
    """The server's log; first waiting (5 s at most) for a line that is written after the response was sent."""
    deadline = time.monotonic() + 5
    while once_it_holds not in server.log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.log_path.read_text(errors="replace")


# -- request bodies ---------------------------------------------------------------------


def read_http_answer(connection: socket.socket) -> str:
    """The whole answer: headers, then as many body bytes as Content-Length says (they may come in separate packets)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += connection.recv(65536)
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_an_anonymous_large_body_is_refused_before_it_is_read(server):
    memory_before = resident_memory_kib(server.pid)
    port = server.config.port
    head = (
        f"POST /api/v1/datasets HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {50_000_000}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head + b"[" * 100_000)  # 0.2% of the declared 50 MB: the rest never comes
        answer = read_http_answer(connection)
    assert answer.startswith("HTTP/1.1 401"), answer[:200]
    assert "needs a valid API key or session token" in answer
    assert time.monotonic() - started < 5, "answered without waiting for the body"
    assert resident_memory_kib(server.pid) - memory_before < 20_000, "the body was not buffered"

    def chunks():
        for _ in range(40):
            yield b" " * 8192

    chunked = httpx.post(
        f"{server.url}/api/v1/datasets", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert chunked.status_code == 401, "a body of unknown length is refused once it passes 64 KiB without credentials"

    def anonymous(size: int) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/v1/datasets", content=b" " * size, headers={"Content-Type": "application/json"}
        )

    assert "needs a valid API key" in anonymous(ANONYMOUS_BODY_LIMIT + 1).text
    assert "needs a valid API key" not in anonymous(ANONYMOUS_BODY_LIMIT).text, (
        "up to 64 KiB, the server itself answers"
    )


def test_the_owner_pushes_a_500_record_batch_over_the_anonymous_limit(server):
    dataset = create_curation_dataset(owner_client(server), "bruno", "bruno", "big_batch")
    text = 'A sentence of a long answer, quoted "here".\n' * 100
    records = [
        rg.Record(
            id=str(index), fields={"category": "open_qa", "instruction": f"{index}?", "context": text, "response": text}
        )
        for index in range(500)
    ]
    payload_bytes = 500 * 2 * len(json.dumps(text))
    assert payload_bytes > 30 * ANONYMOUS_BODY_LIMIT
    dataset.records.log(records, batch_size=500)
    total = httpx.get(
        f"{server.url}/api/v1/datasets/{dataset.id}/records", headers=owner_headers(server), params={"limit": 1}
    )
    assert total.json()["total"] == 500


def test_a_body_over_the_configured_limit_is_refused_even_with_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_BODY_ENV, "1")
    small = start_embedded_argilla(tmp_path / "argilla", annotator_names=["dora"])
    try:

        def post(size: int) -> httpx.Response:
            body = json.dumps({"name": "x" * size, "workspace_id": "not-a-uuid"})
            return httpx.post(
                f"{small.url}/api/v1/datasets",
                content=body,
                headers={**owner_headers(small), "Content-Type": "application/json"},
            )

        too_big = post(1_500_000)
        assert too_big.status_code == 413
        assert "over this server's limit of 1,000,000 bytes" in too_big.text and MAX_BODY_ENV in too_big.text
        assert post(900_000).status_code == 422, "under the limit, the body reaches the server (which rejects the name)"
    finally:
        small.stop()


def test_the_default_limit_fits_the_largest_legitimate_batch():
    """500 records (the server's maximum per request), 5 text fields and 3 suggestions each at the loader's
    100,000-character limit, made of real Dolly text, in the JSON the argilla client sends (ensure_ascii)."""
    dolly = [json.loads(line) for line in SHIPPED_DOLLY.read_text().splitlines()]
    prose = "\n".join(row["context"] + "\n" + row["response"] for row in dolly)
    text = (prose * (100_000 // len(prose) + 1))[:100_000]
    record = {
        "id": None,
        "external_id": "15014",
        "fields": {name: text for name in ("category", "instruction", "context", "response", "quality_notes")},
        "metadata": {
            "flags": ["citation_markers", "long_context"],
            "priority": 3,
            "duplicate_group": "g" * 32,
            "response_words": 17_000,
        },
        "suggestions": [
            {"question_id": str(uuid.uuid4()), "value": text, "agent": "quality-rules", "score": 0.9, "type": None}
            for _ in range(3)
        ],
        "responses": [],
        "vectors": {},
    }
    one_record = len(json.dumps(record).encode())
    batch = len(b'{"items": []}') + 500 * (one_record + 2)
    assert batch <= DEFAULT_MAX_BODY_MB * 1_000_000, f"{batch:,} bytes"


# -- sign-in -----------------------------------------------------------------------------


def test_failed_sign_ins_are_throttled_per_account_and_logged_without_the_password(server):
    wrong_password = f"wrong-{uuid.uuid4().hex}"
    ana = annotator_account(server, "ana")
    for _ in range(FAILED_SIGN_INS_PER_ACCOUNT):
        failed = httpx.post(f"{server.url}/api/v1/token", data={"username": "ana", "password": wrong_password})
        assert failed.status_code == 401
    throttled = httpx.post(f"{server.url}/api/v1/token", data={"username": "ana", "password": ana.password})
    assert throttled.status_code == 429, "even the right password waits once the account is throttled"
    assert 0 < int(throttled.headers["Retry-After"]) <= SIGN_IN_WINDOW_SECONDS
    bruno = annotator_account(server, "bruno")
    assert (
        httpx.post(f"{server.url}/api/v1/token", data={"username": "bruno", "password": bruno.password}).status_code
        == 201
    )

    unknown_name = f"nobody-{uuid.uuid4().hex[:8]}"
    assert (
        httpx.post(
            f"{server.url}/api/v1/token", data={"username": unknown_name, "password": wrong_password}
        ).status_code
        == 401
    )
    log = server_log(server, once_it_holds="failed sign-in with an unknown username")
    assert log.count("failed sign-in as 'ana' from 127.0.0.1") == FAILED_SIGN_INS_PER_ACCOUNT
    assert "sign-ins as 'ana' are refused" in log
    assert "failed sign-in with an unknown username from 127.0.0.1" in log
    assert wrong_password not in log and ana.password not in log and unknown_name not in log


def test_the_throttle_counts_per_address_forgets_successes_and_expires():
    now = [1000.0]
    throttle = SignInThrottle(clock=lambda: now[0])
    for index in range(FAILED_SIGN_INS_PER_ADDRESS):
        throttle.settle_attempt(throttle.record_attempt(f"user{index}", "10.0.0.7"), failed=True)
    assert throttle.seconds_until_allowed("someone-else", "10.0.0.7") > 0, "one address guessing many accounts"
    assert throttle.seconds_until_allowed("someone-else", "10.0.0.8") == 0

    success = throttle.record_attempt("dora", "10.0.0.9")
    throttle.settle_attempt(success, failed=False)
    assert throttle.failures_of("dora") == 0, "a successful sign-in is no failure"
    for _ in range(FAILED_SIGN_INS_PER_ACCOUNT):
        throttle.record_attempt("dora", "10.0.0.9")
    wait = throttle.seconds_until_allowed("dora", "10.0.0.10")
    assert 0 < wait <= SIGN_IN_WINDOW_SECONDS + 1, "the account is throttled from every address, answered or not"
    now[0] += wait
    assert throttle.seconds_until_allowed("dora", "10.0.0.10") == 0


def test_sign_ins_in_flight_from_one_address_are_capped_apart_from_its_failures():
    throttle = SignInThrottle(clock=lambda: 1000.0)
    waiting = [
        throttle.record_attempt(f"colleague{index}", "10.0.0.7") for index in range(FAILED_SIGN_INS_PER_ADDRESS * 2)
    ]
    assert throttle.seconds_until_allowed("one-more", "10.0.0.7") == 0, "a team signing in at once is no attack"
    for index in range(len(waiting), SIGN_INS_IN_FLIGHT_PER_ADDRESS):
        waiting.append(throttle.record_attempt(f"colleague{index}", "10.0.0.7"))
    assert throttle.seconds_until_allowed("one-more", "10.0.0.7") > 0, "a spray of parallel guesses is capped"
    for attempt in waiting:
        throttle.settle_attempt(attempt, failed=False)
    assert throttle.seconds_until_allowed("one-more", "10.0.0.7") == 0 and not throttle.in_flight


def test_a_team_behind_one_address_signs_in_at_once(server):
    """More colleagues than the address's failure budget sign in at the same moment from one address (an office
    behind NAT; here loopback), on a server slow to answer: every one gets in. bench/load.py found the 21st refused."""
    headers = owner_headers(server)
    password = f"team-{uuid.uuid4().hex}"
    names = [f"crew{index:02d}-{uuid.uuid4().hex[:6]}" for index in range(FAILED_SIGN_INS_PER_ADDRESS + 10)]
    user_ids = []
    try:
        for name in names:
            created = httpx.post(
                f"{server.url}/api/v1/users", headers=headers,
                json={"first_name": name, "username": name, "role": "annotator", "password": password},
            )  # fmt: skip
            assert created.status_code == 201, created.text
            user_ids.append(created.json()["id"])
        everyone_ready = threading.Barrier(len(names))

        def sign_in(name: str) -> int:
            everyone_ready.wait()
            form = {"username": name, "password": password}
            return httpx.post(f"{server.url}/api/v1/token", data=form, timeout=120).status_code

        with ThreadPoolExecutor(len(names)) as pool:
            statuses = list(pool.map(sign_in, names))
        assert statuses == [201] * len(names)
    finally:
        for user_id in user_ids:
            httpx.delete(f"{server.url}/api/v1/users/{user_id}", headers=headers)


# -- the log -----------------------------------------------------------------------------


def test_no_request_input_reaches_the_log(server):
    marks = {name: f"{name}-{uuid.uuid4().hex[:12]}" for name in ("long", "field", "sign_in")}
    marks["short"] = f"Zq{uuid.uuid4().hex[:5]}"  # 7 characters: one too few
    log_size_before = server.log_path.stat().st_size
    headers = owner_headers(server)

    created = httpx.post(
        f"{server.url}/api/v1/users", headers=headers,
        json={"first_name": "Dora", "username": "dora", "role": "annotator", "password": marks["short"]},
    )  # fmt: skip
    users = httpx.get(f"{server.url}/api/v1/users", headers=headers).json()["items"]
    bruno_id = next(user["id"] for user in users if user["username"] == "bruno")
    patched = httpx.patch(
        f"{server.url}/api/v1/users/{bruno_id}", headers=headers, json={"password": marks["long"] * 10}
    )
    huge = httpx.post(
        f"{server.url}/api/v1/datasets",
        headers=headers,
        json={"name": marks["field"] * 300_000, "workspace_id": "not-a-uuid"},
    )
    signed_in = httpx.post(f"{server.url}/api/v1/token", data={"username": "bruno", "password": marks["sign_in"]})
    assert (created.status_code, patched.status_code, huge.status_code, signed_in.status_code) == (422, 422, 422, 401)
    assert len(huge.request.content) > 5_000_000

    log = server_log(server, once_it_holds="failed sign-in as 'bruno'")  # logged last
    assert "request rejected, RequestValidationError" in log, "the rejections are logged (without their values)"
    for mark in marks.values():
        assert mark not in log
    assert server.log_path.stat().st_size - log_size_before < 20_000, (
        "a 5 MB invalid field costs the log a line, not 10 MB"
    )


# -- origins, framing, host names -------------------------------------------------------


def test_cors_and_writes_only_for_the_servers_own_origin(server):
    headers = owner_headers(server)
    foreign = httpx.get(f"{server.url}/api/v1/me", headers={**headers, "Origin": "http://evil.example"})
    assert foreign.status_code == 200 and "access-control-allow-origin" not in foreign.headers
    own = httpx.get(f"{server.url}/api/v1/me", headers={**headers, "Origin": server.url})
    assert own.headers["access-control-allow-origin"] == server.url
    preflight = httpx.options(
        f"{server.url}/api/v1/users",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-argilla-api-key",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers

    write = httpx.post(
        f"{server.url}/api/v1/workspaces", headers={**headers, "Origin": "http://evil.example"}, json={"name": "csrf"}
    )
    assert write.status_code == 403
    sign_in = httpx.post(
        f"{server.url}/api/v1/token", headers={"Origin": "null"}, data={"username": "bruno", "password": "x" * 8}
    )
    assert sign_in.status_code == 403
    workspaces = httpx.get(f"{server.url}/api/v1/me/workspaces", headers=headers).json()["items"]
    assert "csrf" not in [workspace["name"] for workspace in workspaces]


def test_every_response_forbids_framing_by_other_sites_and_foreign_host_names_are_refused(server):
    for path in ("/", "/sign-in", "/api/v1/me"):
        response = httpx.get(f"{server.url}{path}", headers=owner_headers(server))
        assert response.headers["content-security-policy"] == "frame-ancestors 'self'", path
        assert response.headers["x-frame-options"] == "SAMEORIGIN", path

    rebound = httpx.get(
        f"{server.url}/api/v1/me", headers={**owner_headers(server), "Host": f"attacker.example:{server.config.port}"}
    )
    assert rebound.status_code == 400 and "unknown Host header" in rebound.text
    assert httpx.get(f"{server.url}/sign-in", headers={"Host": f"localhost:{server.config.port}"}).status_code == 200


@pytest.mark.browser
def test_a_page_of_another_site_cannot_frame_the_sign_in_page(server, tmp_path):
    (tmp_path / "framing.html").write_text(
        f'<iframe id="argilla" src="{server.url}/sign-in" width="800" height="600"></iframe>'
    )
    site = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with headless_page() as page:
            page.goto(f"http://127.0.0.1:{site.server_address[1]}/framing.html")
            page.wait_for_timeout(3000)
            framed = page.frame_locator("#argilla").locator("input[type=password]")
            assert framed.count() == 0, "the sign-in form must not render inside another site's page"

            # The control: the same frame on the server's own origin renders the form, so the check above can see one.
            page.goto(f"{server.url}/sign-in")
            page.evaluate("""() => { const f = document.createElement('iframe'); f.id = 'own'; f.src = '/sign-in';
                                     f.width = 800; f.height = 600; document.body.appendChild(f); }""")
            page.frame_locator("#own").locator("input[type=password]").wait_for(timeout=30_000)
    finally:
        site.shutdown()
        site.server_close()
