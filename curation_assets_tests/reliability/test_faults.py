"""Faults against the real embedded server: the Argilla server dies, is unreachable or refuses the key,
annotators work during a read, an annotator leaves, a run dies half-way. No submitted answer is lost
or duplicated."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import dagster as dg
import httpx
import pandas as pd
import pytest

from curation_assets import state
from curation_assets.argilla_adapter.errors import (
    ArgillaNotFoundError,
    ArgillaUnauthorizedError,
    ArgillaUnreachableError,
)
from curation_assets.argilla_adapter.transport import RetryPolicy, may_retry
from curation_assets.defs.resources import ArgillaResource
from curation_assets.defs.source_loading import load_source
from curation_assets.local_argilla.process import ArgillaServerProcess, free_port
from curation_assets.logic.activity import SensorMemory
from curation_assets.logic.assignment import plan_assignments
from curation_assets.logic.source import SHIPPED_EXCERPT
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.harness import FAST_RETRIES, ProjectOnServer
from curation_assets_tests.reliability.harness import (
    ActAfter,
    AnswersFirstWith,
    FaultOnNth,
    KilledWithTheRequestInFlight,
    answered_with,
    applied_then_dropped,
    comparable_argilla,
    comparable_curated,
    delete_curation_datasets,
    failure_text,
    is_bulk_upsert,
    records_by_shard,
    resource_with_fault,
    resource_with_transport,
    responses_by_record,
    submit,
)

pytestmark = pytest.mark.server


@pytest.fixture
def pipeline_on_fresh_server(fresh_argilla_server, tmp_path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield ProjectOnServer(fresh_argilla_server, instance, tmp_path)


def test_retry_policy_backs_off_with_jitter_and_spares_client_errors():
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    for retry in range(1, 8):
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        delays = {policy.delay(retry) for _ in range(20)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays) and len(delays) > 1, (
            "jittered, doubling, capped"
        )
    for status in (500, 502, 503, 504, 429):
        assert may_retry("GET", status_code=status) and may_retry("PUT", status_code=status)
    for status in (400, 401, 403, 404, 409, 422):
        assert not may_retry("GET", status_code=status) and not may_retry("PUT", status_code=status)
    assert may_retry("PUT", error=httpx.ReadTimeout("slow")) and may_retry(
        "GET", error=httpx.RemoteProtocolError("cut")
    )
    # A POST the server may have applied is not repeated; one that never left is.
    assert not may_retry("POST", error=httpx.ReadTimeout("slow")) and may_retry(
        "POST", error=httpx.ConnectError("refused")
    )
    assert not may_retry("POST", status_code=500) and may_retry("POST", status_code=503)


@pytest.mark.parametrize("landed", [1, 2, 5, 11])
@pytest.mark.parametrize("interrupted", ["ana", "bruno", "chen"])
def test_a_plan_made_after_an_interrupted_push_is_the_clean_plan(interrupted, landed):
    ids = [str(index) for index in range(37)]
    clean = plan_assignments(ids, ["ana", "bruno", "chen"], seed=42)
    holder = dict(zip(clean["id"], clean["annotator"]))
    # Shards are pushed in source order; the crash came after `landed` records of one shard.
    placed = {record_id: holder[record_id] for record_id in [r for r in ids if holder[r] == interrupted][:landed]}
    assert plan_assignments(ids, ["ana", "bruno", "chen"], seed=42, previous=placed).equals(clean)


def test_unreachable_server_is_retried_a_bounded_number_of_times_and_logged_without_secrets(caplog):
    url = f"http://127.0.0.1:{free_port()}"
    argilla = ArgillaResource(api_url=url, api_key="secret-key-never-logged", **FAST_RETRIES)
    with caplog.at_level(logging.WARNING), pytest.raises(ArgillaUnreachableError) as raised:
        argilla.client.check_connection()
    message = str(raised.value)
    assert (
        f"cannot reach Argilla at {url}" in message
        and "failed 3 time(s)" in message
        and "curation-argilla serve" in message
    )
    retries = [record.getMessage() for record in caplog.records if "retry" in record.getMessage()]
    assert len(retries) == 2 and "retry 1 of 2" in retries[0] and "GET /api/v1/me" in retries[0]
    assert "secret-key-never-logged" not in caplog.text + message


def test_busy_server_answers_are_retried_until_the_real_answer(argilla_server, caplog):
    owner = ArgillaResource(api_url=argilla_server.url, api_key=argilla_server.owner_api_key)
    busy = resource_with_transport(
        owner, lambda inner: AnswersFirstWith(inner, [503, 500, 429]), **FAST_RETRIES | {"retry_attempts": 4}
    )
    with caplog.at_level(logging.WARNING):
        assert busy.client.check_connection()["role"] == "owner"
    retries = [message for message in caplog.messages if "retry" in message]
    assert [message.split("failed ")[1].split(";")[0] for message in retries] == [
        "(HTTP 503)",
        "(HTTP 500)",
        "(HTTP 429)",
    ]
    too_busy = resource_with_transport(owner, lambda inner: AnswersFirstWith(inner, [503] * 5), **FAST_RETRIES)
    with pytest.raises(ArgillaUnreachableError, match=r"kept answering 503 to GET /api/v1/me after 3 tries"):
        too_busy.client.check_connection()


def test_client_errors_are_not_retried(argilla_server, caplog):
    argilla = ArgillaResource(api_url=argilla_server.url, api_key=argilla_server.owner_api_key, **FAST_RETRIES).client
    with caplog.at_level(logging.WARNING), pytest.raises(ArgillaNotFoundError, match="answered 404"):
        argilla.request("GET", "/api/v1/datasets/00000000-0000-0000-0000-000000000000")
    wrong_key = ArgillaResource(api_url=argilla_server.url, api_key="not-a-key", **FAST_RETRIES)
    with caplog.at_level(logging.WARNING), pytest.raises(ArgillaUnauthorizedError, match="rejected the API key"):
        wrong_key.client.check_connection()
    annotator = next(account for account in argilla_server.credentials.annotators if account.username == "ana")
    annotator_key = ArgillaResource(api_url=argilla_server.url, api_key=annotator.api_key, **FAST_RETRIES)
    with (
        caplog.at_level(logging.WARNING),
        pytest.raises(ArgillaUnauthorizedError, match=r"refused GET /api/v1/users \(403\).*owner role"),
    ):
        annotator_key.client.annotator_usernames()
    assert not [record for record in caplog.records if "retry" in record.getMessage()]


def test_server_killed_mid_push_then_rerun_keeps_one_copy_and_every_response(fresh_argilla_server, tmp_path):
    server = fresh_argilla_server
    source_file = tmp_path / "records.jsonl"
    excerpt = load_source(SHIPPED_EXCERPT)[["id", "instruction", "context", "response", "category"]]
    excerpt.to_json(source_file, orient="records", lines=True, force_ascii=False)
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline = ProjectOnServer(server, instance, tmp_path, source={"file": str(source_file)})
        crash_mid_push_then_rerun(pipeline, excerpt, source_file)


def crash_mid_push_then_rerun(pipeline: ProjectOnServer, excerpt: pd.DataFrame, source_file) -> None:
    server = pipeline.server
    plan = pipeline.plan()
    pipeline.push_all_shards()
    ana_ids = sorted(plan.loc[plan["annotator"] == "ana", "id"])
    submit(pipeline, "ana", ana_ids[:3], mark="(ana)")
    submit(pipeline, "ana", ana_ids[3:4], status="draft", mark="(draft)")
    responses_before = responses_by_record(pipeline)
    assert len(responses_before) == 4

    # The user revises their file, so ana's untouched records are pushed again, two per request.
    excerpt.assign(response=excerpt["response"] + " (revised)").to_json(
        source_file, orient="records", lines=True, force_ascii=False
    )
    pipeline.plan()

    crashing = resource_with_fault(pipeline.resource, is_bulk_upsert, server.kill, log_batch_size=2, **FAST_RETRIES)
    failed = pipeline.run_job("push_shards", partition_key="ana", argilla=crashing)
    assert not failed.success
    error = failure_text(failed)
    assert (
        f"cannot reach Argilla at {server.url}" in error and "curation-argilla serve" in error and "rerun" in error
    ), error

    restarted = ArgillaServerProcess(server.config)
    # The server comes back while a call is already retrying: that call just waits for it.
    restarter = threading.Thread(target=restarted.start)
    restarter.start()
    patient = ArgillaResource(
        api_url=server.url,
        api_key=server.owner_api_key,
        retry_attempts=200,
        retry_max_delay_seconds=0.5,
        retry_budget_seconds=120,
    )
    try:
        ana_records = records_by_shard(pipeline, patient.client)["ana"]
        restarter.join()
        # The sensor asks for the failed push again (a new run key), and for the other stale shards.
        requests = pipeline.sensor_tick().run_requests
        push = pipeline.job_name("push_shards")
        shard_run_keys = {request.partition_key: request.run_key for request in requests if request.job_name == push}
        assert sorted(shard_run_keys) == ["ana", "bruno", "chen"] and shard_run_keys["ana"].endswith(":1")
        revised = [r for r in ana_records if r["fields"]["response"].endswith("(revised)")]
        assert 0 < len(revised) < len(ana_ids) - 4, "the crash left the push half done"

        pipeline.push_all_shards()
        shards = records_by_shard(pipeline)
        external_ids = [record["external_id"] for records in shards.values() for record in records]
        assert len(external_ids) == len(plan) and set(external_ids) == set(plan["id"]), (
            "exactly one copy of each record"
        )
        for record in shards["ana"]:
            answered = bool(record.get("responses"))
            assert record["fields"]["response"].endswith("(revised)") != answered, (
                "untouched records revised, answered ones kept"
            )
        assert responses_by_record(pipeline) == responses_before, "every response still there, unchanged"
    finally:
        restarted.stop()


# -- faults during writes: a batch upsert of a push (PUT .../records/bulk) meets a busy server, a dropped
# connection or a server killed with the batch in flight; afterwards each record is in Argilla exactly once,
# as a clean push leaves it, and every answer is untouched.

WRITE_TEAM = {"annotators": ["ana", "bruno", "chen"]}


def excerpt_file(folder) -> tuple[pd.DataFrame, object]:
    source_file = folder / "records.jsonl"
    excerpt = load_source(SHIPPED_EXCERPT)[["id", "instruction", "context", "response", "category"]]
    excerpt.to_json(source_file, orient="records", lines=True, force_ascii=False)
    return excerpt, source_file


def push_a_revision(
    pipeline: ProjectOnServer, excerpt: pd.DataFrame, source_file, argilla: ArgillaResource | None = None
):
    """Plan and push; ana answers four records; the file is revised, so ana's other records are upserted again, two per
    request.

    Returns the push run of the revision (through `argilla`), the plan and the responses as they were before it.
    """
    plan = pipeline.plan()
    pipeline.push_all_shards()
    ana_ids = sorted(plan.loc[plan["annotator"] == "ana", "id"])
    submit(pipeline, "ana", ana_ids[:3], mark="(ana)")
    submit(pipeline, "ana", ana_ids[3:4], status="draft", mark="(draft)")
    responses_before = responses_by_record(pipeline)
    assert len(responses_before) == 4
    excerpt.assign(response=excerpt["response"] + " (revised)").to_json(
        source_file, orient="records", lines=True, force_ascii=False
    )
    replanned = pipeline.plan()
    assert replanned[["id", "annotator"]].equals(plan[["id", "annotator"]]), "the revision moves no record"
    return pipeline.run_job("push_shards", partition_key="ana", argilla=argilla), plan, responses_before


@pytest.fixture(scope="module")
def clean_revision_push(argilla_server, tmp_path_factory):
    """What Argilla holds after the same revision pushed without any fault: the reference each faulty push must reach."""
    folder = tmp_path_factory.mktemp("clean_writes")
    excerpt, source_file = excerpt_file(folder)
    (folder / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
        pipeline = ProjectOnServer(
            argilla_server,
            instance,
            folder,
            name="writes_clean",
            source={"file": str(source_file)},
            annotation=WRITE_TEAM,
        )
        delete_curation_datasets(pipeline)
        pushed, _, _ = push_a_revision(
            pipeline, excerpt, source_file, pipeline.resource.model_copy(update={"log_batch_size": 2})
        )
        assert pushed.success
        yield comparable_argilla(pipeline)
        delete_curation_datasets(pipeline)


def retries_logged(pipeline: ProjectOnServer, run: dg.ExecuteInProcessResult) -> list[str]:
    """The transport's retry warnings in the run's event log, as the Dagster UI shows them."""
    return [entry.user_message for entry in pipeline.instance.all_logs(run.run_id) if "retry" in entry.user_message]


def assert_each_record_once_as_a_clean_push_left_it(pipeline, plan, responses_before, clean) -> None:
    shards = records_by_shard(pipeline)
    external_ids = [record["external_id"] for records in shards.values() for record in records]
    assert sorted(external_ids) == sorted(plan["id"]), "each planned record in exactly one dataset, exactly once"
    for records in shards.values():
        for record in records:
            questions = [suggestion["question_id"] for suggestion in record.get("suggestions") or []]
            assert len(questions) == len(set(questions)), f"one suggestion per question on {record['external_id']}"
    revised = [r for r in shards["ana"] if r["fields"]["response"].endswith("(revised)")]
    assert len(revised) == len(shards["ana"]) - 4, (
        "every untouched record of ana's carries the revision, no half-applied batch"
    )
    assert responses_by_record(pipeline) == responses_before, "every answer untouched"
    assert comparable_argilla(pipeline) == clean, "fields, suggestions, metadata and answers as after a clean push"


def write_fault_pipeline(server, folder, instance, name: str) -> tuple[ProjectOnServer, pd.DataFrame, object]:
    excerpt, source_file = excerpt_file(folder)
    pipeline = ProjectOnServer(
        server, instance, folder, name=name, source={"file": str(source_file)}, annotation=WRITE_TEAM
    )
    delete_curation_datasets(pipeline)
    return pipeline, excerpt, source_file


@pytest.mark.parametrize(
    "fault, retried_causes",
    [
        (lambda: answered_with([503, 500, 429]), ["HTTP 503", "HTTP 500", "HTTP 429"]),
        (applied_then_dropped, ["RemoteProtocolError"]),
    ],
    ids=["busy_503_500_429", "applied_then_connection_dropped"],
)
def test_a_batch_upsert_that_meets_a_fault_is_retried_and_leaves_each_record_once(
    argilla_server, tmp_path, clean_revision_push, fault, retried_causes
):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline, excerpt, source_file = write_fault_pipeline(argilla_server, tmp_path, instance, "writes_faulty")
        strike = fault()
        # The second of ana's bulk upserts, in the middle of the push.
        faulty = resource_with_transport(
            pipeline.resource,
            lambda inner: FaultOnNth(inner, is_bulk_upsert, 2, strike),
            log_batch_size=2,
            **FAST_RETRIES | {"retry_attempts": 4},
        )
        try:
            pushed, plan, responses_before = push_a_revision(pipeline, excerpt, source_file, faulty)
            assert pushed.success, failure_text(pushed)
            retries = retries_logged(pipeline, pushed)
            assert [message.split("failed (")[1].split(")")[0] for message in retries] == retried_causes, retries
            assert all("PUT /api/v1/datasets/" in message and "/records/bulk" in message for message in retries)
            if hasattr(strike, "answers"):
                # 204: the push asks for no answer body (Prefer: return=minimal) and the embedded server gives none.
                assert strike.answers == [204], "the server had applied the batch whose answer was lost"
            assert_each_record_once_as_a_clean_push_left_it(pipeline, plan, responses_before, clean_revision_push)
        finally:
            delete_curation_datasets(pipeline)


def test_a_batch_upsert_refused_until_the_retries_run_out_fails_once_then_the_rerun_completes_the_push(
    argilla_server, tmp_path, clean_revision_push
):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline, excerpt, source_file = write_fault_pipeline(argilla_server, tmp_path, instance, "writes_refused")
        always_busy = resource_with_transport(
            pipeline.resource,
            lambda inner: FaultOnNth(inner, is_bulk_upsert, 2, answered_with([503] * 10)),
            log_batch_size=2,
            **FAST_RETRIES,
        )
        try:
            failed, plan, responses_before = push_a_revision(pipeline, excerpt, source_file, always_busy)
            assert [event.step_key for event in failed.get_step_failure_events()] == [pipeline.node("annotator_shards")]
            error = failure_text(failed)
            assert f"Argilla at {argilla_server.url} kept failing (503) while upserting records" in error, error
            assert "after 3 tries; check the server's log and rerun" in error
            ana = records_by_shard(pipeline)["ana"]
            revised = sorted(
                record["external_id"] for record in ana if record["fields"]["response"].endswith("(revised)")
            )
            assert len(revised) == 2, (
                "the batch before the refused one is in; the refused one and those after it are not"
            )
            assert (
                len(ana) == len(set(record["external_id"] for record in ana)) == len(plan[plan["annotator"] == "ana"])
            )
            assert responses_by_record(pipeline) == responses_before

            rerun = pipeline.run_job("push_shards", partition_key="ana")
            assert rerun.success
            assert_each_record_once_as_a_clean_push_left_it(pipeline, plan, responses_before, clean_revision_push)
        finally:
            delete_curation_datasets(pipeline)


def test_a_server_killed_with_a_batch_upsert_in_flight_comes_back_and_the_push_leaves_each_record_once(
    fresh_argilla_server, tmp_path, clean_revision_push
):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline, excerpt, source_file = write_fault_pipeline(fresh_argilla_server, tmp_path, instance, "writes_killed")
        killed = KilledWithTheRequestInFlight(fresh_argilla_server)
        # Patient enough to wait for the server to come back: the push goes on where it stood.
        patient = resource_with_transport(
            pipeline.resource,
            lambda inner: FaultOnNth(inner, is_bulk_upsert, 2, killed),
            log_batch_size=2, retry_attempts=200, retry_base_delay_seconds=0.1, retry_max_delay_seconds=0.5, retry_budget_seconds=120,
        )  # fmt: skip
        try:
            pushed, plan, responses_before = push_a_revision(pipeline, excerpt, source_file, patient)
            assert killed.killed_with_bytes_unread, "the server died with the batch received and unread"
            assert pushed.success, failure_text(pushed)
            retries = retries_logged(pipeline, pushed)
            assert retries and "PUT /api/v1/datasets/" in retries[0] and "ConnectError" in " ".join(retries), retries
            assert_each_record_once_as_a_clean_push_left_it(pipeline, plan, responses_before, clean_revision_push)
        finally:
            killed.stop()


ARGILLA_ASSETS = ["annotation_assignments", "annotator_shards", "collected_feedback"]


@pytest.fixture(scope="module")
def planned_pipeline(argilla_server, tmp_path_factory):
    """A plan made against the shared server, so each Argilla-facing asset can then be run with a bad connection."""
    folder = tmp_path_factory.mktemp("bad_connection")
    (folder / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
        pipeline = ProjectOnServer(argilla_server, instance, folder, name="bad_connection")
        # The session's server is shared: start without this project's datasets, and leave none behind.
        delete_curation_datasets(pipeline)
        pipeline.planned = pipeline.plan()
        yield pipeline
        delete_curation_datasets(pipeline)


def written_state(pipeline: ProjectOnServer) -> dict:
    """Everything a run of the project's assets writes: Argilla's datasets (settings, records, answers),
    Dagster's materializations and the files of its outputs and storage."""
    datasets = pipeline.datasets()
    return {
        "argilla": comparable_argilla(pipeline),
        "datasets": {shard: (d.id, d.status, d.metadata, pipeline.argilla.request("GET", f"/api/v1/datasets/{d.id}/fields")["items"])
                     for shard, d in datasets.items()},
        "materializations": {
            name: len(pipeline.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=pipeline.key(name)), limit=1000).records)
            for name in ARGILLA_ASSETS
        },
        "files": {
            str(path): (path.stat().st_size, path.stat().st_mtime_ns)
            for folder in ("output", "storage")
            for path in sorted((pipeline.folder / folder).rglob("*"))
            if path.is_file()
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def collected_pipeline(argilla_server, tmp_path_factory):
    """A project planned, pushed and collected once: there is something in Argilla, Dagster and on disk a failed run could
    change."""
    folder = tmp_path_factory.mktemp("nothing_written")
    (folder / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
        pipeline = ProjectOnServer(argilla_server, instance, folder, name="nothing_written", annotation=WRITE_TEAM)
        delete_curation_datasets(pipeline)
        pipeline.plan()
        pipeline.push_all_shards()
        pipeline.materialize(["collected_feedback"])
        yield pipeline
        delete_curation_datasets(pipeline)


@pytest.mark.parametrize("asset_name", ARGILLA_ASSETS)
def test_each_argilla_asset_fails_with_one_clear_error_when_unreachable_or_the_key_is_wrong(
    collected_pipeline, asset_name
):
    pipeline = collected_pipeline
    before = written_state(pipeline)
    assert before["argilla"] and before["files"] and all(before["materializations"].values())
    url = f"http://127.0.0.1:{free_port()}"
    unreachable = ArgillaResource(api_url=url, api_key="x", **FAST_RETRIES)
    wrong_key = ArgillaResource(api_url=pipeline.server.url, api_key="not-a-key", **FAST_RETRIES)
    partition = "ana" if asset_name == "annotator_shards" else None
    expected = {
        unreachable: [f"cannot reach Argilla at {url}", "curation-argilla serve"],
        wrong_key: [
            f"Argilla at {pipeline.server.url} rejected the API key (401)",
            "curation-argilla credentials --env",
        ],
    }
    for argilla, phrases in expected.items():
        failed = pipeline.materialize([asset_name], partition_key=partition, argilla=argilla, raise_on_error=False)
        assert [event.step_key for event in failed.get_step_failure_events()] == [pipeline.node(asset_name)]
        error = failure_text(failed)
        error_class = "ArgillaUnreachableError" if argilla is unreachable else "ArgillaUnauthorizedError"
        assert error_class in error and all(phrase in error for phrase in phrases), error
        assert failed.get_asset_materialization_events() == []
        assert written_state(pipeline) == before, "nothing written: not in Argilla, not in Dagster, not on disk"


def test_sensor_skips_and_keeps_its_cursor_when_unreachable_or_the_key_is_wrong(planned_pipeline):
    pipeline = planned_pipeline
    cursor = '{"ana": {"discarded": 1, "submitted": 4}}'
    url = f"http://127.0.0.1:{free_port()}"
    # Default retries: the sensor shortens them itself, so a tick ends well within Dagster's timeout.
    for argilla, phrase in (
        (
            ArgillaResource(api_url=url, api_key="x"),
            f"cannot reach Argilla at {url}: GET /api/v1/users failed 2 time(s)",
        ),
        (ArgillaResource(api_url=pipeline.server.url, api_key="not-a-key"), "rejected the API key"),
    ):
        tick = pipeline.sensor_tick(cursor=cursor, argilla=argilla)
        assert not tick.run_requests and phrase in tick.skip_message
        assert tick.cursor == cursor, "the next tick compares against the last state actually seen"


def test_answers_submitted_while_feedback_is_collected_are_fully_in_or_in_the_next_refresh(planned_pipeline):
    pipeline = planned_pipeline
    server = pipeline.server
    pipeline.push_all_shards()
    reading, first_answer_in = threading.Event(), threading.Event()

    def hold_the_read_until_answers_flow():
        reading.set()
        first_answer_in.wait(timeout=60)

    # One record per request, so the read spans the submissions: after each page (a full read's listing or an
    # incremental read's search), until the first answer has landed, the read waits, then goes on while the others
    # arrive. Each page, not only the first: two datasets are read at a time, and a reader left running would
    # finish its datasets before anyone answered, when the machine is busy.
    slow_reader = resource_with_transport(
        pipeline.resource,
        lambda inner: ActAfter(
            inner,
            lambda request: request.url.path.endswith(("/records", "/records/search")),
            hold_the_read_until_answers_flow,
            once=False,
        ),
        record_page_size=1,
    )
    sent: dict[str, dict] = {}

    def annotate():
        reading.wait(timeout=60)
        # chen's dataset is read last: their answers are the likeliest to land while it is read.
        for annotator in ("chen", "bruno", "ana"):
            account = next(a for a in server.credentials.annotators if a.username == annotator)
            with AnnotatorSession(server.url, account.api_key) as session:
                queue, _ = session.queue(session.dataset_id(pipeline.dataset_name, annotator), limit=4)
                for record in queue:
                    answers = {
                        "new-instruction": f"asked during the read {record.external_id}",
                        "new-response": "answered during the read",
                    }
                    session.respond(record, "submitted", answers)
                    sent[record.external_id] = answers
                    first_answer_in.set()

    annotator_thread = threading.Thread(target=annotate)
    annotator_thread.start()
    during = pipeline.materialize(["collected_feedback"], argilla=slow_reader).output_for_node(
        pipeline.node("collected_feedback")
    )
    annotator_thread.join()
    assert len(sent) == 12

    def submitted(feedback: pd.DataFrame) -> dict[str, dict]:
        rows = feedback[feedback["status"] == "submitted"]
        return {
            row.record_id: {"new-instruction": row.new_instruction, "new-response": row.new_response}
            for row in rows.itertuples()
        }

    assert during["record_id"].is_unique and set(during["record_id"]) == set(pipeline.planned["id"])
    seen_during = submitted(during)
    assert seen_during, "some answers arrived while the read was under way and made it in"
    assert all(sent[record_id] == answers for record_id, answers in seen_during.items()), "each one complete"
    missing = set(sent) - set(seen_during)
    assert set(during.loc[during["record_id"].isin(missing), "status"]) <= {"pending"}, "the others not half-seen"

    after = pipeline.materialize(["collected_feedback"]).output_for_node(pipeline.node("collected_feedback"))
    assert submitted(after) == sent and after["record_id"].is_unique, "the next refresh converges to every answer"


class InjectedCrash(RuntimeError):
    """Stands for the run's process dying at that point."""


def crash():
    raise InjectedCrash("the run was killed here")


def annotate_and_refresh(pipeline: ProjectOnServer, plan: pd.DataFrame):
    """The same work in every run: each annotator edits their first two records and discards the third."""
    for annotator in ("ana", "bruno", "chen"):
        mine = sorted(plan.loc[plan["annotator"] == annotator, "id"])
        submit(pipeline, annotator, mine[:2], mark="(edited)")
        submit(pipeline, annotator, mine[2:3], status="discarded")
    return pipeline.refresh()


def test_a_run_killed_mid_way_then_rerun_ends_as_one_clean_run(argilla_server, tmp_path):
    server = argilla_server
    final_states = []
    for scenario in ("clean", "killed and rerun"):
        folder = tmp_path / scenario
        (folder / "dagster").mkdir(parents=True)
        with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
            pipeline = ProjectOnServer(server, instance, folder, name="killed_run")
            # Both scenarios start from a server without this project's datasets (the session's server is shared).
            delete_curation_datasets(pipeline)
            plan = pipeline.plan()
            if scenario == "killed and rerun":
                dying = resource_with_fault(pipeline.resource, is_bulk_upsert, crash, log_batch_size=2)
                killed = pipeline.materialize(
                    ["annotator_shards"], partition_key="ana", argilla=dying, raise_on_error=False
                )
                assert not killed.success and "the run was killed here" in failure_text(killed)
                assert len(records_by_shard(pipeline)["ana"]) == 2, "one batch of ana's shard landed"
                # The rerun starts over from the plan, which now sees a half-pushed layout.
                replanned = pipeline.plan()
                assert replanned.equals(plan), "the plan made after the crash is the clean run's plan"
            pipeline.push_all_shards()
            if scenario == "killed and rerun":
                dying_reader = resource_with_fault(
                    pipeline.resource, lambda request: request.url.path.endswith("/records"), crash
                )
                assert not pipeline.run_job("refresh_curation", argilla=dying_reader).success
                # With no new work since, the sensor still asks for the failed refresh again.
                first_tick = pipeline.sensor_tick()
                again = pipeline.sensor_tick(cursor=first_tick.cursor)
                assert [request.job_name for request in again.run_requests] == [pipeline.job_name("refresh_curation")]
            feedback, curated = annotate_and_refresh(pipeline, plan)
            final_states.append((plan, comparable_argilla(pipeline), comparable_curated(curated)))
            assert (feedback["status"] == "submitted").sum() == 6 and len(curated) == 6
    delete_curation_datasets(pipeline)
    (clean_plan, clean_argilla, clean_curated), (plan, argilla_state, curated) = final_states
    assert plan.equals(clean_plan)
    assert argilla_state == clean_argilla, "Argilla holds the same records, suggestions and answers"
    assert curated == clean_curated, "the same curated dataset"


# The push the sensor launched, run in a process of its own; after the first bulk upsert is answered it
# writes a marker and stops there, so the test kills it (SIGKILL) at the same point every time.
PUSH_IN_A_PROCESS = """
import sys, threading
from pathlib import Path
from types import SimpleNamespace

import dagster as dg

from curation_assets_tests.harness import ProjectOnServer
from curation_assets_tests.reliability.harness import is_bulk_upsert, resource_with_fault

url, key, folder, name, marker, run_key, sensor_name = sys.argv[1:]


def stop_here_until_killed():
    Path(marker).write_text("the first batch of ana's shard is in Argilla")
    threading.Event().wait()


with dg.instance_for_test(temp_dir=str(Path(folder) / "dagster")) as instance:
    pipeline = ProjectOnServer(SimpleNamespace(url=url, owner_api_key=key), instance, Path(folder), name=name)
    pushing = resource_with_fault(pipeline.resource, is_bulk_upsert, stop_here_until_killed, log_batch_size=2)
    tags = {"dagster/run_key": run_key, "dagster/sensor_name": sensor_name}
    pipeline.run_job("push_shards", partition_key="ana", argilla=pushing, tags=tags)
"""


def push_in_a_process_killed_after_its_first_batch(pipeline: ProjectOnServer, request: dg.RunRequest) -> dg.DagsterRun:
    """The sensor's push of ana's shard, in its own process, SIGKILLed with one batch of several in Argilla."""
    marker = pipeline.folder / "first-batch-in"
    (sensor,) = pipeline.definitions.sensors
    arguments = [pipeline.server.url, pipeline.server.owner_api_key, str(pipeline.folder), pipeline.name, str(marker)]
    process = subprocess.Popen(
        [sys.executable, "-c", PUSH_IN_A_PROCESS, *arguments, request.run_key, sensor.name],
        cwd=state.repository_root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.stdout.read().decode(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the push never got its first batch in"
            time.sleep(0.1)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    (killed,) = pipeline.instance.get_runs(filters=dg.RunsFilter(job_name=pipeline.job_name("push_shards")))
    return killed


def test_a_push_process_killed_mid_way_is_asked_again_and_the_rerun_ends_as_one_clean_run(argilla_server, tmp_path):
    final_states = []
    for scenario in ("clean", "SIGKILL and rerun"):
        folder = tmp_path / scenario.replace(" ", "_")
        (folder / "dagster").mkdir(parents=True)
        with dg.instance_for_test(temp_dir=str(folder / "dagster")) as instance:
            pipeline = ProjectOnServer(argilla_server, instance, folder, name="sigkilled_run")
            delete_curation_datasets(pipeline)
            plan = pipeline.plan()
            push = pipeline.job_name("push_shards")
            requests = {r.partition_key: r for r in pipeline.sensor_tick().run_requests if r.job_name == push}
            assert sorted(requests) == ["ana", "bruno", "chen"]
            if scenario == "SIGKILL and rerun":
                killed = push_in_a_process_killed_after_its_first_batch(pipeline, requests["ana"])
                ana_records = records_by_shard(pipeline)["ana"]
                assert len(ana_records) == 2 < (plan["annotator"] == "ana").sum(), "one batch of several landed"
                # The process died without a word: Dagster still shows the run as started, and the sensor
                # does not push the shard a second time alongside what it believes is running.
                assert killed.status == dg.DagsterRunStatus.STARTED
                while_started = {
                    r.partition_key: r.run_key for r in pipeline.sensor_tick().run_requests if r.job_name == push
                }
                assert while_started["ana"] == killed.tags["dagster/run_key"], (
                    "a key already used: the daemon launches nothing"
                )
                # Terminating the dead run in the Dagster UI marks it canceled; the sensor then asks for the push again.
                pipeline.instance.report_run_canceled(killed)
                requests = {r.partition_key: r for r in pipeline.sensor_tick().run_requests if r.job_name == push}
                assert requests["ana"].run_key != killed.tags["dagster/run_key"] and requests["ana"].run_key.endswith(
                    ":1"
                )
                assert pipeline.plan()[["id", "annotator"]].equals(plan[["id", "annotator"]]), (
                    "the rerun's plan is the clean plan"
                )
            for partition, request in sorted(requests.items()):
                assert pipeline.run_job(
                    "push_shards", partition_key=partition, tags={"dagster/run_key": request.run_key}
                ).success
            feedback, curated = annotate_and_refresh(pipeline, plan)
            assert (feedback["status"] == "submitted").sum() == 6 and len(curated) == 6
            final_states.append((plan, comparable_argilla(pipeline), comparable_curated(curated)))
            delete_curation_datasets(pipeline)
    (clean_plan, clean_argilla, clean_curated), (plan, argilla_state, curated) = final_states
    assert plan.equals(clean_plan)
    assert argilla_state == clean_argilla, "Argilla holds the same records, suggestions, metadata and answers"
    assert curated == clean_curated, "the same curated dataset"


def test_the_sensor_asks_again_for_a_failed_push_or_refresh_at_most_3_times_in_a_row(argilla_server, tmp_path):
    """Real failed runs on a real instance (Argilla unreachable for the run), one sensor evaluation after each."""
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline = ProjectOnServer(argilla_server, instance, tmp_path, name="retry_counting", annotation=WRITE_TEAM)
        delete_curation_datasets(pipeline)
        unreachable = ArgillaResource(api_url=f"http://127.0.0.1:{free_port()}", api_key="x", **FAST_RETRIES)
        push, refresh = pipeline.job_name("push_shards"), pipeline.job_name("refresh_curation")

        def requested(cursor=None) -> tuple[dict[str, str], list[str], str]:
            """The push run keys by annotator, the refresh run keys, and the next cursor of one tick."""
            tick = pipeline.sensor_tick(cursor=cursor)
            pushes = {r.partition_key: r.run_key for r in tick.run_requests if r.job_name == push}
            return pushes, [r.run_key for r in tick.run_requests if r.job_name == refresh], tick.cursor

        pipeline.plan()
        (plan_record,) = instance.fetch_materializations(pipeline.key("annotation_assignments"), limit=1).records
        pushes, refreshes, cursor = requested()
        assert pushes == {
            name: f"annotator_shards:{name}:{plan_record.storage_id}:0" for name in ("ana", "bruno", "chen")
        }
        assert refreshes == [], "no answer yet, no failed refresh: nothing to refresh"

        for failures in (1, 2, 3, 4):
            assert not pipeline.run_job("push_shards", partition_key="ana", argilla=unreachable).success
            pushes, _, cursor = requested(cursor)
            if failures <= 3:
                assert pushes["ana"] == f"annotator_shards:ana:{plan_record.storage_id}:{failures}", (
                    "asked again, under a new key"
                )
            else:
                assert "ana" not in pushes, "after 3 automatic retries the push waits for a person"
                assert f"{push} for ana failed 4 times in a row: launch it by hand once fixed" in pipeline.sensor_log
            assert pushes["bruno"].endswith(":0") and pushes["chen"].endswith(":0"), (
                "each shard counts its own failures"
            )

        # A new plan starts the count over: the failures were against the old one.
        pipeline.plan()
        (new_plan,) = instance.fetch_materializations(pipeline.key("annotation_assignments"), limit=1).records
        pushes, _, cursor = requested(cursor)
        assert pushes["ana"] == f"annotator_shards:ana:{new_plan.storage_id}:0"
        for partition in ("ana", "bruno", "chen"):
            assert pipeline.run_job("push_shards", partition_key=partition).success
        pushes, refreshes, cursor = requested(cursor)
        assert pushes == {} and refreshes == [f"refresh:{refresh_key(cursor)}:0"], (
            "every shard pushed; new datasets seen: one refresh"
        )
        assert pipeline.run_job("refresh_curation").success
        assert requested(cursor)[:2] == ({}, []), "nothing new"

        # The refresh: asked again after each failure, even with no new answer, at most 3 times in a row.
        for failures in (1, 2, 3, 4):
            assert not pipeline.run_job("refresh_curation", argilla=unreachable).success
            _, refreshes, cursor = requested(cursor)
            assert refreshes == ([f"refresh:{refresh_key(cursor)}:{failures}"] if failures <= 3 else [])
        # A refresh that succeeds ends the streak; the next failure is the first in a row again.
        assert pipeline.run_job("refresh_curation").success
        assert requested(cursor)[1] == []
        assert not pipeline.run_job("refresh_curation", argilla=unreachable).success
        assert requested(cursor)[1] == [f"refresh:{refresh_key(cursor)}:1"]
        delete_curation_datasets(pipeline)


def refresh_key(cursor: str) -> str:
    """The part of a sensor cursor a refresh's run key names: the news asked for, not when it was polled."""
    return SensorMemory.from_cursor(cursor).refresh_key()


def test_a_dataset_left_half_created_by_a_crash_is_created_again(planned_pipeline):
    pipeline = planned_pipeline
    argilla = pipeline.argilla
    delete_curation_datasets(pipeline)
    workspaces = {w["name"]: w["id"] for w in argilla.request("GET", "/api/v1/me/workspaces")["items"]}
    workspace_id = workspaces.get("ana") or argilla.request("POST", "/api/v1/workspaces", json={"name": "ana"})["id"]
    # What a server killed between creating the dataset and publishing it leaves behind.
    argilla.request("POST", "/api/v1/datasets", json={"name": pipeline.dataset_name, "workspace_id": workspace_id})
    assert pipeline.datasets()["ana"].status == "draft"

    pipeline.materialize(["annotator_shards"], partition_key="ana")
    dataset = pipeline.datasets()["ana"]
    assert dataset.status == "ready"
    planned = set(pipeline.planned.loc[pipeline.planned["annotator"] == "ana", "id"])
    assert {record["external_id"] for record in argilla.iter_records(dataset.id)} == planned
    delete_curation_datasets(pipeline)


def test_annotators_who_leave_keep_their_answers_and_hand_over_untouched_records(pipeline_on_fresh_server):
    pipeline = pipeline_on_fresh_server
    server = pipeline.server
    plan = pipeline.plan()
    pipeline.push_all_shards()
    share = {
        annotator: sorted(plan.loc[plan["annotator"] == annotator, "id"]) for annotator in ("ana", "bruno", "chen")
    }
    sent = {
        "bruno": submit(pipeline, "bruno", share["bruno"][:2], mark="(bruno)"),
        "chen": submit(pipeline, "chen", share["chen"][:2], mark="(chen)"),
    }
    discarded = submit(pipeline, "chen", share["chen"][2:3], status="discarded")
    pipeline.refresh()

    # bruno's account is deleted in Argilla (which deletes his responses with it); later chen is
    # taken off the team in the project's declaration while keeping her account.
    bruno_id = pipeline.argilla.user_ids_by_name()["bruno"]
    pipeline.argilla.request("DELETE", f"/api/v1/users/{bruno_id}")
    without_chen = ProjectOnServer(server, pipeline.instance, pipeline.folder, annotation={"annotators": ["ana"]})
    for departed, declared in (("bruno", pipeline), ("chen", without_chen)):
        replanning = declared.materialize(["annotation_assignments"])
        replanned = replanning.output_for_node(declared.node("annotation_assignments"))
        declared.push_all_shards()
        feedback, curated = declared.refresh()

        holder = dict(zip(replanned["id"], replanned["annotator"]))
        answered_by_departed = set(sent[departed]) | (set(discarded) if departed == "chen" else set())
        assert {record_id for record_id in share[departed] if holder[record_id] == departed} == answered_by_departed
        staying = {"ana"} if departed == "chen" else {"ana", "chen"}
        assert all(holder[record_id] in staying for record_id in set(share[departed]) - answered_by_departed)

        shards = records_by_shard(pipeline)
        assert {record["external_id"] for record in shards[departed]} == answered_by_departed, "untouched records left"
        external_ids = [record["external_id"] for records in shards.values() for record in records]
        assert sorted(external_ids) == sorted(plan["id"]), "every record in exactly one dataset"

        assert feedback["record_id"].is_unique and set(feedback["record_id"]) == set(plan["id"])
        for annotator, answers in sent.items():
            rows = feedback[feedback["annotator"] == annotator].set_index("record_id")
            for record_id, answer in answers.items():
                assert rows.loc[record_id, "status"] == "submitted"
                assert rows.loc[record_id, "new_response"] == answer["new-response"], f"{annotator}'s answer kept"
        curated_by_id = curated.set_index("id")
        for annotator, answers in sent.items():
            for record_id, answer in answers.items():
                assert curated_by_id.loc[record_id, "annotator"] == annotator
                assert curated_by_id.loc[record_id, "response"] == answer["new-response"]
        assert len(curated) == 4
        assert declared.last_checks == {
            "argilla_matches_plan": True,
            "curated_records_are_valid": True,
            "no_annotator_agrees_far_less": True,
        }
