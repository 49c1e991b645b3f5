"""Faults against the real embedded server: the Argilla server dies, is unreachable or refuses the key,
annotators work during a read, an annotator leaves, a run dies half-way. No submitted answer is lost
or duplicated."""

import logging
import threading

import dagster as dg
import httpx
import pandas as pd
import pytest

from curation_assets.annotation_settings import DATASET_NAME
from curation_assets.argilla_transport import RetryPolicy, may_retry
from curation_assets.assets.shards import annotator_shards
from curation_assets.local_argilla.process import ArgillaServerProcess, free_port
from curation_assets.logic.source import SHIPPED_EXCERPT, load_source
from curation_assets.resources import ArgillaResource, ArgillaUnavailableError
from curation_assets_tests.reliability.harness import (
    FAST_RETRIES,
    PipelineOnServer,
    failure_text,
    is_bulk_upsert,
    records_by_shard,
    resource_with_fault,
    responses_by_record,
    submit,
)


@pytest.fixture
def pipeline_on_fresh_server(fresh_argilla_server, tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield PipelineOnServer(fresh_argilla_server, instance, tmp_path)


def test_retry_policy_backs_off_with_jitter_and_spares_client_errors():
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    for retry in range(1, 8):
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        delays = {policy.delay(retry) for _ in range(20)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays) and len(delays) > 1, "jittered, doubling, capped"
    for status in (500, 502, 503, 504, 429):
        assert may_retry("GET", status_code=status) and may_retry("PUT", status_code=status)
    for status in (400, 401, 403, 404, 409, 422):
        assert not may_retry("GET", status_code=status) and not may_retry("PUT", status_code=status)
    assert may_retry("PUT", error=httpx.ReadTimeout("slow")) and may_retry("GET", error=httpx.RemoteProtocolError("cut"))
    # A POST the server may have applied is not repeated; one that never left is.
    assert not may_retry("POST", error=httpx.ReadTimeout("slow")) and may_retry("POST", error=httpx.ConnectError("refused"))
    assert not may_retry("POST", status_code=500) and may_retry("POST", status_code=503)


def test_unreachable_server_is_retried_a_bounded_number_of_times_and_logged_without_secrets(caplog):
    url = f"http://127.0.0.1:{free_port()}"
    argilla = ArgillaResource(api_url=url, api_key="secret-key-never-logged", **FAST_RETRIES)
    with caplog.at_level(logging.WARNING), pytest.raises(ArgillaUnavailableError) as raised:
        argilla.check_connection()
    message = str(raised.value)
    assert f"cannot reach Argilla at {url}" in message and "failed 3 time(s)" in message and "curation-argilla serve" in message
    retries = [record.getMessage() for record in caplog.records if "retry" in record.getMessage()]
    assert len(retries) == 2 and "retry 1 of 2" in retries[0] and "GET /api/v1/me" in retries[0]
    assert "secret-key-never-logged" not in caplog.text + message


def test_client_errors_are_not_retried(argilla_server, caplog):
    argilla = ArgillaResource(api_url=argilla_server.url, api_key=argilla_server.owner_api_key, **FAST_RETRIES)
    with caplog.at_level(logging.WARNING), pytest.raises(httpx.HTTPStatusError, match="answered 404"):
        argilla.request("GET", "/api/v1/datasets/00000000-0000-0000-0000-000000000000")
    wrong_key = ArgillaResource(api_url=argilla_server.url, api_key="not-a-key", **FAST_RETRIES)
    with caplog.at_level(logging.WARNING), pytest.raises(ArgillaUnavailableError, match="rejected the API key"):
        wrong_key.check_connection()
    assert not [record for record in caplog.records if "retry" in record.getMessage()]


def test_a_restart_within_the_retry_budget_goes_unnoticed(fresh_argilla_server):
    server = fresh_argilla_server
    argilla = ArgillaResource(
        api_url=server.url, api_key=server.owner_api_key, retry_attempts=100, retry_max_delay_seconds=0.5, retry_budget_seconds=120
    )
    before = argilla.annotator_usernames()
    server.stop()
    restarter = threading.Timer(1.0, server.start)
    restarter.start()
    try:
        assert argilla.annotator_usernames() == before, "the call waited for the server instead of failing"
    finally:
        restarter.join()


def test_server_killed_mid_push_then_rerun_keeps_one_copy_and_every_response(pipeline_on_fresh_server, tmp_path):
    pipeline = pipeline_on_fresh_server
    server = pipeline.server
    plan = pipeline.plan()
    pipeline.push_all_shards()
    ana_ids = sorted(plan.loc[plan["annotator"] == "ana", "id"])
    submit(server, "ana", ana_ids[:3], mark="(ana)")
    submit(server, "ana", ana_ids[3:4], status="draft", mark="(draft)")
    responses_before = responses_by_record(pipeline.argilla)
    assert len(responses_before) == 4

    # The source changes, so ana's untouched records are pushed again, two per request.
    changed = load_source(SHIPPED_EXCERPT)
    changed["response"] = changed["response"] + " (revised)"
    revised_source = tmp_path / "revised.jsonl"
    changed.to_json(revised_source, orient="records", lines=True, force_ascii=False)
    pipeline.plan(source=str(revised_source), split="train")

    crashing = resource_with_fault(pipeline.argilla, is_bulk_upsert, server.kill, log_batch_size=2, **FAST_RETRIES)
    failed = pipeline.materialize([annotator_shards], partition_key="ana", argilla=crashing, raise_on_error=False)
    assert not failed.success
    error = failure_text(failed)
    assert f"cannot reach Argilla at {server.url}" in error and "curation-argilla serve" in error and "rerun" in error

    restarted = ArgillaServerProcess(server.config).start()
    try:
        ana_records = records_by_shard(pipeline.argilla)["ana"]
        revised = [r for r in ana_records if r["fields"]["response"].endswith("(revised)")]
        assert 0 < len(revised) < len(ana_ids) - 4, "the crash left the push half done"

        pipeline.push_all_shards()
        shards = records_by_shard(pipeline.argilla)
        external_ids = [record["external_id"] for records in shards.values() for record in records]
        assert len(external_ids) == len(plan) and set(external_ids) == set(plan["id"]), "exactly one copy of each record"
        for record in shards["ana"]:
            answered = bool(record.get("responses"))
            assert record["fields"]["response"].endswith("(revised)") != answered, "untouched records revised, answered ones kept"
        assert responses_by_record(pipeline.argilla) == responses_before, "every response still there, unchanged"
    finally:
        restarted.stop()
