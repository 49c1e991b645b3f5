"""Answers at UI speed under load: simulated annotators making the web UI's requests, the pipeline running beside them.

    python bench/load.py human --annotators 10 25 50 100 [--minutes 2] [--team 100]
    python bench/load.py human --backend postgres --workers 2 --cores shared --annotators 100
    python bench/load.py tight [--annotators 8] [--seconds 90]
    python bench/load.py all            # the tight loop, then the human-pace sweep

Backends: `sqlite` (the embedded server's default, one worker) or `postgres` (the team profile:
curation_assets.team starts a private PostgreSQL and Redis, the server runs `--workers N`).

What one step measures (a fresh copy of the same fixture each time):
- The fixture, built once by the pipeline itself and cached under bench/results/scratch/: a team of
  `--team` annotators on a fresh embedded Argilla, `dolly_generator.py` records (15,000 by default)
  planned and pushed by the real assets (`annotation_assignments`, `annotator_shards`, in-process
  `dg.materialize` with the real ArgillaResource: one dataset per annotator in their workspace, with
  suggestions and metadata), a first refresh and a sensor tick, so that the step starts where a team's
  day would.
- Human pace (`human`): each simulated annotator is its own UI session (its own sign-in with its own
  password, its own bearer token and connections) and makes exactly the requests Argilla 2.8's web UI
  makes (bench/ui_request_trace.py recorded them in headless Chromium): sign-in and home page, opening
  the dataset (first queue page of 10 with responses and suggestions, metrics, settings), then per
  record the answer (POST /records/{id}/responses), the dataset progress and the user's metrics, and
  the next queue page (10 records) whenever 6 records are left in the page it holds. Annotators arrive
  over the first minute, then take 20-60 s per record, with bursts (15% of the time: 3-8 quick
  records of 3-8 s each). The step runs for `--minutes` (compressed: a short stretch of a working day
  at full human pace, not a day).
- Tight loop (`tight`): the issue's per-request measure: each annotator reads its next pending record
  (the UI's queue search with limit 1) and submits it, with no pause.
- Meanwhile the pipeline runs in its own process as Dagster's daemon would run it: the project's
  sensor ticks every 30 s and every run it asks for (the refresh of collected_feedback ->
  change_statistics -> curated_dolly) is executed against the same server.
- Cores (`--cores separate`, the default): the server (and PostgreSQL, Redis) on core 0, the load
  generator and the pipeline on core 1 (the pipeline niced, so that the measuring client answers
  promptly). `--cores shared`: every process may run on every core, and the results say so. The CPU
  each used is reported (the machine's other users are not pinned away: see the load average).
- Afterwards every answer the server accepted is read back over REST (the owner's records endpoint)
  and must be there exactly once, with the status and values sent.

Latencies are the client's wall clock per request. Results: bench/results/load-<timestamp>.json.
Figures that are reported come from runs under `flock /work/bench.lock`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))  # the shared harness in curation_assets_tests

from curation_assets.local_argilla import process as server_process  # noqa: E402
from curation_assets.local_argilla.config import LocalArgillaConfig  # noqa: E402
from curation_assets.local_argilla.process import ArgillaServerProcess, free_port  # noqa: E402
from curation_assets.local_argilla.runtime import DISABLE_SPEEDUPS_ENV  # noqa: E402
from curation_assets.server_identity import ServerIdentityError  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
SCRATCH_DIR = RESULTS_DIR / "scratch"
PROJECT_NAME = "load"
TARGET_P95_MS = {"human": 250, "tight": 300}
# A first start creates the whole team's accounts (a password hash each): on a busy 2-core machine a team of
# 100 takes longer than the 120 s a start is normally given.
server_process.STARTUP_TIMEOUT_SECONDS = 900
SENSOR_INTERVAL_SECONDS = 30

# The UI's annotation queue ("Pending"): what it POSTs to /me/datasets/{id}/records/search (see the trace).
PENDING_QUEUE = {
    "query": {},
    "filters": {
        "and": [
            {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
            {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]},
        ]
    },
}
QUEUE_PAGE = 10
# The UI asks for the next page when this many records of its page are left to answer.
NEXT_PAGE_WHEN_LEFT = 6

# Request kinds, as reported. Session kinds happen once per sign-in; record kinds once per record.
RECORD_KINDS = ("queue page", "submit", "dataset progress", "my metrics")
TIGHT_KINDS = ("read next (limit 1)", "submit")


def annotator_names(count: int) -> list[str]:
    return [f"annotator{index:03d}" for index in range(1, count + 1)]


# -- recording ------------------------------------------------------------------------------------


@dataclass
class Recorder:
    """Every request's kind, latency and outcome; errors keep their status or exception."""

    started: float = field(default_factory=time.monotonic)
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    error_examples: list[str] = field(default_factory=list)

    async def request(
        self, client: httpx.AsyncClient, kind: str, method: str, path: str, **kwargs
    ) -> httpx.Response | None:
        began = time.perf_counter()
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            self._error(kind, f"{type(error).__name__}: {error}")
            return None
        self.samples[kind].append(time.perf_counter() - began)
        if response.status_code >= 400:
            self._error(kind, f"HTTP {response.status_code}: {response.text[:200]}")
            return None
        return response

    def _error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        if len(self.error_examples) < 20:
            self.error_examples.append(f"{kind}: {message}")

    def summary(self) -> dict:
        kinds = {}
        for kind, seconds in sorted(self.samples.items()):
            milliseconds = np.asarray(seconds) * 1000
            kinds[kind] = {
                "count": len(seconds),
                "p50_ms": round(float(np.percentile(milliseconds, 50)), 1),
                "p95_ms": round(float(np.percentile(milliseconds, 95)), 1),
                "p99_ms": round(float(np.percentile(milliseconds, 99)), 1),
                "max_ms": round(float(milliseconds.max()), 1),
                "errors": self.errors.get(kind, 0),
            }
        for kind, count in self.errors.items():
            kinds.setdefault(kind, {"count": 0, "errors": count})
        return {"kinds": kinds, "errors": sum(self.errors.values()), "error_examples": self.error_examples}


# -- one annotator in the web UI -----------------------------------------------------------------


@dataclass
class Answer:
    record_id: str
    response_id: str
    status: str
    values: dict


class UiSession:
    """One annotator's browser session: their own sign-in, token and connections, the UI's requests."""

    def __init__(self, url: str, username: str, password: str, recorder: Recorder, randomness: random.Random):
        self.username = username
        self.password = password
        self.recorder = recorder
        self.randomness = randomness
        # A browser keeps up to six connections to a host.
        self.client = httpx.AsyncClient(
            base_url=url, timeout=60.0, limits=httpx.Limits(max_connections=6, max_keepalive_connections=6)
        )
        self.dataset: dict = {}
        self.question_names: dict[str, str] = {}
        self.answers: list[Answer] = []
        # Records of the pages the UI holds that this session has not answered yet.
        self.buffer: list[dict] = []
        self.seen: set[str] = set()

    async def close(self) -> None:
        await self.client.aclose()

    async def call(self, kind: str, method: str, path: str, **kwargs):
        response = await self.recorder.request(self.client, kind, method, path, **kwargs)
        return None if response is None else (response.json() if response.content else {})

    async def sign_in(self, dataset_name: str) -> bool:
        """The sign-in page, the token, then the home page with the annotator's datasets (as traced)."""
        await self.call("sign-in: oauth2 providers", "GET", "/api/v1/oauth2/providers")
        token = await self.call(
            "sign-in: token", "POST", "/api/v1/token", data={"username": self.username, "password": self.password}
        )
        if token is None:
            return False
        self.client.headers["Authorization"] = f"Bearer {token['access_token']}"
        await self.call("home: me", "GET", "/api/v1/me")
        datasets, _, _ = await asyncio.gather(
            self.call("home: my datasets", "GET", "/api/v1/me/datasets"),
            self.call("home: my workspaces", "GET", "/api/v1/me/workspaces"),
            self.call("home: my workspaces", "GET", "/api/v1/me/workspaces"),
        )
        if not datasets:
            return False
        for dataset in datasets["items"]:
            await self.call("home: dataset progress", "GET", f"/api/v1/datasets/{dataset['id']}/progress")
            if dataset["name"] == dataset_name:
                self.dataset = dataset
        if not self.dataset:
            return False
        dataset_id = self.dataset["id"]
        _, questions = await asyncio.gather(
            self.call("home: fields", "GET", f"/api/v1/datasets/{dataset_id}/fields"),
            self.call("home: questions", "GET", f"/api/v1/datasets/{dataset_id}/questions"),
        )
        if questions is None:
            return False
        self.question_names = {question["id"]: question["name"] for question in questions["items"]}
        return True

    async def open_dataset(self) -> None:
        """The annotation page: the dataset, its settings and metrics, and the first page of the queue."""
        dataset_id = self.dataset["id"]
        results = await asyncio.gather(
            self.call("open: dataset", "GET", f"/api/v1/datasets/{dataset_id}"),
            self.queue_page(offset=0),
            self.call("my metrics", "GET", f"/api/v1/me/datasets/{dataset_id}/metrics"),
            self.call("open: vectors settings", "GET", f"/api/v1/datasets/{dataset_id}/vectors-settings"),
            self.call("open: workspace", "GET", f"/api/v1/workspaces/{self.dataset['workspace_id']}"),
            self.call("open: metadata properties", "GET", f"/api/v1/me/datasets/{dataset_id}/metadata-properties"),
            self.call("open: settings", "GET", "/api/v1/settings"),
        )
        metadata_properties = results[5]
        if metadata_properties and metadata_properties["items"]:
            first = metadata_properties["items"][0]["id"]
            await self.call("open: metadata property metrics", "GET", f"/api/v1/metadata-properties/{first}/metrics")

    async def queue_page(self, offset: int) -> None:
        page = await self.call(
            "queue page",
            "POST",
            f"/api/v1/me/datasets/{self.dataset['id']}/records/search",
            params=[("include", "responses"), ("include", "suggestions"), ("offset", offset), ("limit", QUEUE_PAGE)],
            json=PENDING_QUEUE,
        )
        for item in (page or {}).get("items", []):
            record = item["record"]
            if record["id"] not in self.seen:
                self.seen.add(record["id"])
                self.buffer.append(record)

    async def answer_next(self, action: str) -> bool:
        """Answer the record on screen, then what the UI asks after an answer; False when the queue is empty."""
        if not self.buffer:
            await self.queue_page(offset=0)
            if not self.buffer:
                return False
        record = self.buffer.pop(0)
        values = self.values_from_suggestions(record, edited=action == "edit")
        body = {"status": "discarded" if action == "discard" else "submitted", "values": values}
        created = await self.call("submit", "POST", f"/api/v1/records/{record['id']}/responses", json=body)
        if created is not None:
            self.answers.append(Answer(record["id"], created["id"], body["status"], values))
        dataset_id = self.dataset["id"]
        await asyncio.gather(
            self.call("dataset progress", "GET", f"/api/v1/datasets/{dataset_id}/progress"),
            self.call("my metrics", "GET", f"/api/v1/me/datasets/{dataset_id}/metrics"),
        )
        if len(self.buffer) == NEXT_PAGE_WHEN_LEFT:
            # The pending queue no longer holds what was answered: the records after the ones still held.
            await self.queue_page(offset=len(self.buffer))
        return True

    def values_from_suggestions(self, record: dict, edited: bool) -> dict:
        """The pre-filled suggestions, as the UI submits them, the response changed when the annotator edited it."""
        values = {}
        for suggestion in record.get("suggestions") or []:
            name = self.question_names.get(suggestion["question_id"])
            if name and isinstance(suggestion["value"], str):
                values[name] = {"value": suggestion["value"]}
        if edited and "new-response" in values:
            values["new-response"] = {"value": f"{values['new-response']['value']} [simulated edit]"}
        return values


def choose_action(randomness: random.Random) -> str:
    draw = randomness.random()
    return "accept" if draw < 0.5 else "edit" if draw < 0.82 else "discard"


@dataclass(frozen=True)
class Pace:
    """Human pace: seconds per record, with bursts of quick ones."""

    low: float = 20.0
    high: float = 60.0
    burst_chance: float = 0.15
    burst_records: tuple[int, int] = (3, 8)
    burst_low: float = 3.0
    burst_high: float = 8.0
    arrival_seconds: float = 60.0


async def human_annotator(session: UiSession, dataset_name: str, pace: Pace, start_at: float, stop_at: float) -> None:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    try:
        if not await session.sign_in(dataset_name):
            return
        await session.open_dataset()
        burst_left = 0
        while True:
            if burst_left == 0 and session.randomness.random() < pace.burst_chance:
                burst_left = session.randomness.randint(*pace.burst_records)
            if burst_left:
                burst_left -= 1
                think = session.randomness.uniform(pace.burst_low, pace.burst_high)
            else:
                think = session.randomness.uniform(pace.low, pace.high)
            if time.monotonic() + think > stop_at:
                return
            await asyncio.sleep(think)
            if not await session.answer_next(choose_action(session.randomness)):
                return
    finally:
        await session.close()


async def tight_annotator(session: UiSession, dataset_name: str, stop_at: float) -> None:
    """The issue's loop: the next pending record (limit 1) with its suggestions, then its answer; no pause."""
    try:
        if not await session.sign_in(dataset_name):
            return
        dataset_id = session.dataset["id"]
        while time.monotonic() < stop_at:
            page = await session.call(
                "read next (limit 1)",
                "POST",
                f"/api/v1/me/datasets/{dataset_id}/records/search",
                params=[("include", "responses"), ("include", "suggestions"), ("offset", 0), ("limit", 1)],
                json=PENDING_QUEUE,
            )
            if not page or not page["items"]:
                return
            record = page["items"][0]["record"]
            values = session.values_from_suggestions(record, edited=False)
            body = {"status": "submitted", "values": values}
            created = await session.call("submit", "POST", f"/api/v1/records/{record['id']}/responses", json=body)
            if created is not None:
                session.answers.append(Answer(record["id"], created["id"], "submitted", values))
    finally:
        await session.close()


# -- the fixture: what the pipeline pushed ---------------------------------------------------------


class SqliteBackend:
    """The embedded server's default: SQLite in the data dir, one worker; a step copies the fixture's file."""

    name = "sqlite"
    workers = 1

    def __enter__(self) -> SqliteBackend:
        return self

    def __exit__(self, *_exc) -> None:
        pass

    def fixture_database(self, key: str) -> dict:
        return {}

    def fixture_is_intact(self, key: str) -> bool:
        return True

    def step_database(self, key: str, label: str) -> dict:
        return {}

    def database_cpu_seconds(self) -> float:
        return 0.0


class PostgresBackend:
    """The team profile: argilla-server on PostgreSQL with several workers sharing a Redis (curation_assets.team).

    The fixture is pushed into its own database; each step runs on a copy of it (CREATE DATABASE ...
    TEMPLATE), so that every step starts from the same state, as the SQLite steps do.
    """

    name = "postgres"

    def __init__(self, workers: int):
        from curation_assets.team.services import TeamServices

        self.workers = workers
        self.services = TeamServices(SCRATCH_DIR / "load-team-services", use_environment=False)

    def __enter__(self) -> PostgresBackend:
        self.services.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.services.stop()

    def _url(self, database: str) -> str:
        return self.services.database_urls.argilla.rsplit("/", 1)[0] + f"/{database}"

    def _sql(self, statement: str) -> str:
        cluster = self.services.postgres
        result = cluster._run(
            "psql", "--no-psqlrc", "--quiet", "--tuples-only", "--set", "ON_ERROR_STOP=1",
            "--host", str(cluster.socket_dir), "--port", str(cluster.port), "--username", "postgres",
            "--dbname", "postgres", "--command", statement,
            failure=f"PostgreSQL refused: {statement}",
        )  # fmt: skip
        return result.stdout.strip()

    def fixture_database(self, key: str) -> dict:
        name = f"load_fixture_{key}"
        self._sql(f"DROP DATABASE IF EXISTS {name}")
        self._sql(f"CREATE DATABASE {name} OWNER curation")
        return {"database_url": self._url(name), "redis_url": self.services.redis_url}

    def fixture_is_intact(self, key: str) -> bool:
        return self._sql(f"SELECT 1 FROM pg_database WHERE datname = 'load_fixture_{key}'") == "1"

    def step_database(self, key: str, label: str) -> dict:
        name = "load_step_" + "".join(character if character.isalnum() else "_" for character in label)
        self._sql(f"DROP DATABASE IF EXISTS {name}")
        self._sql(f"CREATE DATABASE {name} TEMPLATE load_fixture_{key} OWNER curation")
        return {"database_url": self._url(name), "redis_url": self.services.redis_url}

    def database_cpu_seconds(self) -> float:
        """CPU of the postmaster and its backends (those that exited included), from /proc."""
        postmaster = int((self.services.postgres.data_dir / "postmaster.pid").read_text().split()[0])
        total = 0.0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = _proc_stat(entry)
                if fields and (int(entry.name) == postmaster or int(fields[1]) == postmaster):
                    total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total


def _proc_stat(entry: Path) -> list[str] | None:
    """/proc/<pid>/stat after the command: state(0) ppid(1) pgrp(2) ... utime(11) stime(12) cutime(13) cstime(14)."""
    try:
        return (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def fixture_key(backend, team: int, records: int) -> str:
    return f"{backend.name}_{team}x{records}"


def fixture_dir(backend, team: int, records: int) -> Path:
    return SCRATCH_DIR / f"load-fixture-{fixture_key(backend, team, records)}"


def build_fixture(backend, team: int, records: int) -> Path:
    """A server with `team` annotators and `records` records pushed by the pipeline, and Dagster's state beside it."""
    import dagster as dg
    from dolly_generator import write_source_file

    from curation_assets.dagster_storage import INSTANCE_OVERRIDES
    from curation_assets.local_argilla.process import start_embedded_argilla
    from curation_assets_tests.harness import ProjectOnServer

    key = fixture_key(backend, team, records)
    path = fixture_dir(backend, team, records)
    if (path / "fixture.json").exists() and backend.fixture_is_intact(key):
        return path
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    started = time.monotonic()
    source = write_source_file(records, path / "dolly.parquet")
    server = start_embedded_argilla(
        path / "argilla",
        annotator_names=annotator_names(team),
        workers=backend.workers,
        **backend.fixture_database(key),
    )
    try:
        (path / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(path / "dagster"), overrides=INSTANCE_OVERRIDES) as instance:
            project = ProjectOnServer(
                server, instance, path / "pipeline", name=PROJECT_NAME, source={"file": str(source)}
            )
            project.plan()
            project.push_all_shards()
            first = project.sensor_tick(None)
            project.refresh()
            cursor = project.sensor_tick(first.cursor).cursor
            datasets = {name: dataset.id for name, dataset in project.datasets().items()}
    finally:
        server.stop()
    description = {
        "team": team,
        "records": records,
        "backend": backend.name,
        "dataset_name": project.dataset_name,
        "datasets": datasets,
        "source": str(source),
        "sensor_cursor": cursor,
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (path / "fixture.json").write_text(json.dumps(description, indent=1))
    return path


# -- one step: a fresh copy of the fixture, the server pinned, the pipeline beside it ---------------


def process_group_cpu_seconds(group: int) -> float:
    """User + system CPU of every live process in a process group (children that exited included)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(entry)
        if fields and int(fields[2]) == group:
            total += sum(int(value) for value in fields[11:15]) / ticks
    return total


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


class Step:
    """The fixture copied, its server started on the server cores, the pipeline process on the client cores."""

    def __init__(self, backend, fixture: Path, label: str, server_cores: set[int], client_cores: set[int]):
        self.backend = backend
        self.label = label
        self.fixture = fixture
        self.description = json.loads((fixture / "fixture.json").read_text())
        self.work_dir = SCRATCH_DIR / f"load-run-{label}"
        self.server_cores = server_cores
        self.client_cores = client_cores
        self.server: ArgillaServerProcess | None = None
        self.pipeline: subprocess.Popen | None = None

    def __enter__(self) -> Step:
        shutil.rmtree(self.work_dir, ignore_errors=True)
        shutil.copytree(self.fixture, self.work_dir, ignore=shutil.ignore_patterns("server.log", "frontend-tmp"))
        database = self.backend.step_database(
            fixture_key(self.backend, self.description["team"], self.description["records"]), self.label
        )
        # Children inherit the affinity of the process that starts them.
        os.sched_setaffinity(0, self.server_cores)
        try:
            for attempt in range(3):
                config = LocalArgillaConfig(data_dir=self.work_dir / "argilla", port=free_port(), **database)
                try:
                    self.server = ArgillaServerProcess(config, workers=self.backend.workers).start()
                    break
                except ServerIdentityError:
                    # The free port was taken by another program between the probe and the start: another port.
                    if attempt == 2:
                        raise
        finally:
            os.sched_setaffinity(0, self.client_cores)
        return self

    def start_pipeline(self, seconds: float) -> None:
        self.pipeline_out = self.work_dir / "pipeline-ticks.json"
        command = [
            sys.executable, __file__, "_pipeline",
            "--work-dir", str(self.work_dir),
            "--url", self.server.url,
            "--seconds", str(seconds),
            "--out", str(self.pipeline_out),
        ]  # fmt: skip
        environment = {**os.environ, "CURATION_LOAD_OWNER_KEY": self.server.owner_api_key}
        # Dagster's run logs go to a file: they are the pipeline's, not the benchmark's output.
        with (self.work_dir / "pipeline.log").open("ab") as log:
            self.pipeline = subprocess.Popen(
                command,
                env=environment,
                start_new_session=True,
                preexec_fn=lambda: os.nice(10),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def pipeline_report(self) -> dict:
        if self.pipeline is None:
            return {}
        self.pipeline.wait(timeout=900)
        report = json.loads(self.pipeline_out.read_text()) if self.pipeline_out.exists() else {"error": "no report"}
        report["exit_code"] = self.pipeline.returncode
        return report

    def credentials(self) -> dict[str, str]:
        return {account.username: account.password for account in self.server.credentials.annotators}

    def __exit__(self, *_exc) -> None:
        if self.pipeline is not None and self.pipeline.poll() is None:
            os.killpg(self.pipeline.pid, 15)
            self.pipeline.wait(timeout=60)
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def verify_answers(url: str, owner_key: str, sessions: list[UiSession]) -> dict:
    """Every accepted answer is stored exactly once, with its status and values; nobody else answered there."""
    accepted = sum(len(session.answers) for session in sessions)
    missing = duplicated = different = unexpected = 0
    with httpx.Client(base_url=url, headers={"X-Argilla-Api-Key": owner_key}, timeout=120) as owner:
        users = {user["username"]: user["id"] for user in owner.get("/api/v1/users").json()["items"]}
        for session in sessions:
            if not session.dataset:
                continue
            user_id = users[session.username]
            stored: dict[str, list[dict]] = defaultdict(list)
            offset = 0
            while True:
                page = owner.get(
                    f"/api/v1/datasets/{session.dataset['id']}/records",
                    params={"include": "responses", "offset": offset, "limit": 1000},
                ).json()["items"]
                for record in page:
                    for response in record.get("responses") or []:
                        if response["user_id"] == user_id:
                            stored[record["id"]].append(response)
                if len(page) < 1000:
                    break
                offset += 1000
            answered = {answer.record_id: answer for answer in session.answers}
            for record_id, answer in answered.items():
                responses = stored.get(record_id, [])
                if not responses:
                    missing += 1
                elif len(responses) > 1:
                    duplicated += 1
                elif (
                    responses[0]["id"] != answer.response_id
                    or responses[0]["status"] != answer.status
                    or (responses[0]["values"] or {}) != answer.values
                ):
                    different += 1
            unexpected += len(set(stored) - set(answered))
    return {
        "accepted": accepted,
        "present_exactly_once": accepted - missing - duplicated - different,
        "missing": missing,
        "duplicated": duplicated,
        "different": different,
        "unexpected": unexpected,
    }


async def run_sessions(url: str, names: list[str], passwords: dict[str, str], seed: int, make) -> tuple[Recorder, list]:
    recorder = Recorder()
    sessions = [UiSession(url, name, passwords[name], recorder, random.Random(f"{seed}:{name}")) for name in names]
    await asyncio.gather(*(make(session) for session in sessions))
    return recorder, sessions


def step_figures(step: Step, kind: str, annotators: int, seconds: float, run) -> dict:
    """Run the annotators against a fresh step; the pipeline beside them; CPU, answers and latencies."""
    names = annotator_names(step.description["team"])[:annotators]
    dataset_name = step.description["dataset_name"]
    load_before = load_average()
    server_cpu = process_group_cpu_seconds(step.server.pid)
    database_cpu = step.backend.database_cpu_seconds()
    client_cpu = time.process_time()
    step.start_pipeline(seconds)
    wall = time.monotonic()
    recorder, sessions = asyncio.run(run_sessions(step.server.url, names, step.credentials(), 1, run(dataset_name)))
    wall = time.monotonic() - wall
    server_cpu = process_group_cpu_seconds(step.server.pid) - server_cpu
    database_cpu = step.backend.database_cpu_seconds() - database_cpu
    client_cpu = time.process_time() - client_cpu
    pipeline = step.pipeline_report()
    figures = {
        "mode": kind,
        "annotators": annotators,
        "seconds": round(wall, 1),
        "load_average_1min": {"before": load_before, "after": load_average()},
        "cpu_share_of_one_core": {
            "server": round(server_cpu / wall, 2),
            "database": round(database_cpu / wall, 2),
            "load_generator": round(client_cpu / wall, 2),
            "pipeline": round(pipeline.get("cpu_seconds", 0.0) / wall, 2),
        },
        "answers_per_second": round(sum(len(s.answers) for s in sessions) / wall, 2),
        **recorder.summary(),
        "answers": verify_answers(step.server.url, step.server.owner_api_key, sessions),
        "pipeline": pipeline,
    }
    return figures


def human_step(step: Step, annotators: int, minutes: float, pace: Pace) -> dict:
    seconds = pace.arrival_seconds + minutes * 60

    def run(dataset_name: str):
        began = time.monotonic()
        stop_at = began + seconds

        def make(session: UiSession):
            start_at = began + session.randomness.uniform(0, pace.arrival_seconds)
            return human_annotator(session, dataset_name, pace, start_at, stop_at)

        return make

    figures = step_figures(step, "human", annotators, seconds, run)
    figures["pace"] = pace.__dict__ | {"minutes_after_arrivals": minutes}
    figures["verdict"] = verdict(figures, RECORD_KINDS, TARGET_P95_MS["human"])
    return figures


def tight_step(step: Step, annotators: int, seconds: float) -> dict:
    def run(dataset_name: str):
        stop_at = time.monotonic() + seconds
        return lambda session: tight_annotator(session, dataset_name, stop_at)

    figures = step_figures(step, "tight", annotators, seconds, run)
    figures["verdict"] = verdict(figures, TIGHT_KINDS, TARGET_P95_MS["tight"])
    return figures


def verdict(figures: dict, kinds: tuple[str, ...], target_ms: float) -> dict:
    """Targets met per record (the kinds an annotator makes for every record) and for every kind (sign-in too)."""
    worst = max(kinds, key=lambda kind: figures["kinds"].get(kind, {}).get("p95_ms", 0))
    worst_overall = max(figures["kinds"], key=lambda kind: figures["kinds"][kind].get("p95_ms", 0))
    answers = figures["answers"]
    intact = answers["accepted"] == answers["present_exactly_once"] and answers["unexpected"] == 0
    return {
        "target_p95_ms": target_ms,
        "worst_kind": worst,
        "worst_p95_ms": figures["kinds"].get(worst, {}).get("p95_ms"),
        "p95_met": all(figures["kinds"].get(kind, {}).get("p95_ms", 0) < target_ms for kind in kinds),
        "worst_kind_of_all": worst_overall,
        "worst_p95_ms_of_all": figures["kinds"][worst_overall].get("p95_ms"),
        "p95_met_every_kind": all(kind.get("p95_ms", 0) < target_ms for kind in figures["kinds"].values()),
        "zero_errors": figures["errors"] == 0,
        "answers_intact": intact,
    }


# -- the pipeline beside the annotators (a subprocess) ---------------------------------------------


def pipeline_worker(work_dir: Path, url: str, seconds: float, out: Path) -> None:
    """The sensor every 30 s and every run it requests, as Dagster's daemon would, until `seconds` have passed."""
    import dagster as dg

    from curation_assets.dagster_storage import INSTANCE_OVERRIDES
    from curation_assets_tests.harness import ProjectOnServer

    description = json.loads((work_dir / "fixture.json").read_text())
    server = SimpleNamespace(url=url, owner_api_key=os.environ["CURATION_LOAD_OWNER_KEY"])
    ticks, runs = [], []
    stop_at = time.monotonic() + seconds
    with dg.instance_for_test(temp_dir=str(work_dir / "dagster"), overrides=INSTANCE_OVERRIDES) as instance:
        project = ProjectOnServer(
            server, instance, work_dir / "pipeline", name=PROJECT_NAME, source={"file": description["source"]}
        )
        definitions = dg.Definitions(
            assets=project.definitions.assets,
            asset_checks=project.definitions.asset_checks,
            jobs=project.definitions.jobs,
            resources=project.resources(),
        )
        cursor = description["sensor_cursor"]
        next_tick = time.monotonic() + SENSOR_INTERVAL_SECONDS
        while next_tick < stop_at:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            began = time.monotonic()
            tick = project.sensor_tick(cursor)
            cursor = tick.cursor or cursor
            ticks.append({"seconds": round(time.monotonic() - began, 2), "runs_requested": len(tick.run_requests)})
            for request in tick.run_requests:
                began = time.monotonic()
                result = definitions.resolve_job_def(request.job_name).execute_in_process(
                    partition_key=request.partition_key, instance=instance, raise_on_error=False, tags=request.tags
                )
                runs.append(
                    {"job": request.job_name, "success": result.success, "seconds": round(time.monotonic() - began, 2)}
                )
            next_tick = max(next_tick + SENSOR_INTERVAL_SECONDS, time.monotonic())
    usage = os.times()
    out.write_text(json.dumps({"ticks": ticks, "runs": runs, "cpu_seconds": round(usage.user + usage.system, 1)}))


# -- the runs --------------------------------------------------------------------------------------


def cores() -> tuple[set[int], set[int]]:
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return set(available), set(available)
    return {available[0]}, set(available[1:])


def knee(steps: list[dict], criterion: str = "p95_met") -> dict:
    """The last annotator count that met every target (p95 by `criterion`, no error, answers intact), the first that
    did not."""

    def met(figures: dict) -> bool:
        verdict = figures["verdict"]
        return verdict[criterion] and verdict["zero_errors"] and verdict.get("answers_intact", True)

    ordered = sorted(steps, key=lambda figures: figures["annotators"])
    passed = [s["annotators"] for s in ordered if met(s)]
    missed = [s["annotators"] for s in ordered if not met(s)]
    return {"last_met": max(passed) if passed else None, "first_missed": min(missed) if missed else None}


def print_step(figures: dict) -> None:
    kinds = RECORD_KINDS if figures["mode"] == "human" else TIGHT_KINDS
    parts = [
        f"{kind} {figures['kinds'][kind]['p50_ms']:.0f}/{figures['kinds'][kind]['p95_ms']:.0f}"
        for kind in kinds
        if kind in figures["kinds"] and figures["kinds"][kind]["count"]
    ]
    answers = figures["answers"]
    print(
        f"{figures['mode']:5} {figures['annotators']:4} annotators: p50/p95 ms {'; '.join(parts)} | "
        f"errors {figures['errors']} | answers {answers['accepted']} ({figures['answers_per_second']}/s), "
        f"exactly once {answers['present_exactly_once']} | cpu server {figures['cpu_share_of_one_core']['server']} "
        f"database {figures['cpu_share_of_one_core']['database']} "
        f"client {figures['cpu_share_of_one_core']['load_generator']} pipeline {figures['cpu_share_of_one_core']['pipeline']}"
        f" | load {figures['load_average_1min']['before']}->{figures['load_average_1min']['after']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    human = commands.add_parser("human", help="human pace, one step per annotator count")
    human.add_argument("--annotators", type=int, nargs="+", default=[25, 50, 100, 150])
    human.add_argument("--minutes", type=float, default=5.0)
    human.add_argument("--team", type=int, default=None, help="annotators in the fixture (default: the largest count)")
    tight = commands.add_parser("tight", help="the tight loop: read next (limit 1), submit, no pause")
    tight.add_argument("--annotators", type=int, default=8)
    tight.add_argument("--seconds", type=float, default=90.0)
    everything = commands.add_parser("all", help="tight loop, then the human-pace sweep")
    everything.add_argument("--annotators", type=int, nargs="+", default=[25, 50, 100, 150])
    everything.add_argument("--minutes", type=float, default=5.0)
    for sub in (human, tight, everything):
        sub.add_argument("--records", type=int, default=15_000)
        sub.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
        sub.add_argument("--workers", type=int, default=1, help="server workers (several only on PostgreSQL)")
        sub.add_argument(
            "--cores",
            choices=("separate", "shared"),
            default="separate",
            help="separate: server (and PostgreSQL) on the first core, the load generator and pipeline on the rest; "
            "shared: everything may run on every core (reported as such)",
        )
        sub.add_argument("--arrival-seconds", type=float, default=60.0, help="annotators sign in over this stretch")
        sub.add_argument("--out", type=Path, default=None)
    worker = commands.add_parser("_pipeline")
    worker.add_argument("--work-dir", type=Path, required=True)
    worker.add_argument("--url", required=True)
    worker.add_argument("--seconds", type=float, required=True)
    worker.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    if arguments.command == "_pipeline":
        pipeline_worker(arguments.work_dir, arguments.url, arguments.seconds, arguments.out)
        return

    if arguments.cores == "separate":
        server_cores, client_cores = cores()
    else:
        server_cores = client_cores = set(os.sched_getaffinity(0))
    profile = f"{arguments.backend}-{arguments.workers}-worker{'s' if arguments.workers > 1 else ''}-{arguments.cores}"
    results = {
        "profile": profile,
        "records": arguments.records,
        "speedups_disabled": os.environ.get(DISABLE_SPEEDUPS_ENV, ""),
        "cores": {
            "mode": arguments.cores,
            "server_and_database": sorted(server_cores),
            "load_generator_and_pipeline": sorted(client_cores),
            "machine": os.cpu_count(),
        },
        "command": " ".join(sys.argv),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_1min_at_start": load_average(),
        "steps": [],
    }
    # PostgreSQL and Redis start on the server's cores, like the server.
    os.sched_setaffinity(0, server_cores)
    backend = PostgresBackend(arguments.workers) if arguments.backend == "postgres" else SqliteBackend()
    if arguments.backend == "sqlite" and arguments.workers != 1:
        parser.error("SQLite takes one worker (the server refuses several)")
    with backend:
        os.sched_setaffinity(0, client_cores)
        if arguments.command in ("tight", "all"):
            count = getattr(arguments, "annotators", 8) if arguments.command == "tight" else 8
            fixture = build_fixture(backend, count, arguments.records)
            with Step(backend, fixture, f"tight-{count}", server_cores, client_cores) as step:
                figures = tight_step(step, count, getattr(arguments, "seconds", 90.0))
            print_step(figures)
            results["steps"].append(figures)
        if arguments.command in ("human", "all"):
            team = getattr(arguments, "team", None) or max(arguments.annotators)
            fixture = build_fixture(backend, team, arguments.records)
            human_steps = []
            pace = Pace(arrival_seconds=arguments.arrival_seconds)
            for count in sorted(arguments.annotators):
                with Step(backend, fixture, f"human-{count}", server_cores, client_cores) as step:
                    figures = human_step(step, count, arguments.minutes, pace)
                print_step(figures)
                human_steps.append(figures)
            results["steps"].extend(human_steps)
            results["knee"] = knee(human_steps)
            results["knee_every_kind"] = knee(human_steps, "p95_met_every_kind")
            print(f"knee ({profile}), per-record requests: {results['knee']}; every kind: {results['knee_every_kind']}")
    results["load_average_1min_at_end"] = load_average()
    RESULTS_DIR.mkdir(exist_ok=True)
    out = arguments.out or RESULTS_DIR / f"load-{profile}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
