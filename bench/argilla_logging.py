"""Embedded Argilla push throughput: what the pipeline pushes, through upstream's write path and the fast path.

    python bench/argilla_logging.py --records 15000 [--servers upstream fast] [--client records.log direct] [--profile]

Each run starts a fresh embedded Argilla, creates the curation dataset (`curation_dataset_settings`)
and times the whole push as the pipeline runs it: building the `rg.Record` objects and
`dataset.records.log(records, batch_size=500)` with the real argilla client. Two payloads:

- `fields only`: the four text fields and the external id, no suggestions, no metadata;
- `pipeline`: exactly what `annotator_shards` pushes: `to_argilla_records(review_order(...), signals)`
  over Dolly-shaped records (`dolly_generator.py`) with their `compute_quality_signals`: the quality
  notes field, up to three suggestions (agent and score) and eight metadata values per record.

Servers (`--servers`), switched with `CURATION_ARGILLA_DISABLE_SPEEDUPS` (`runtime.SPEEDUPS`): `fast`
is the embedded default; `upstream` the same with argilla-server's own bulk write path (speedup
`bulk-records` off); `before` the embedded default before the set-based write (also without
`loopback-compression` and `gc-freeze`); `shipped` argilla-server with no speedup at all;
`without-<speedup>` the default without that one. Configurations run side by side in one
invocation, in the order A B then B A per payload and client, so that a drift in the machine's
load touches both alike. After each push the records are read back with responses over the API
(also checking that they are listed in the order pushed: the annotation queue's order), and the
annotation page's pending-queue query is timed (median of 20).

Clients (`--client`): `records.log` is the pipeline's push today. The others prototype a
client-side change: `records.log-gc-paused` pauses the cyclic collector around `records.log`
(`argilla_mapping.collector_paused`); `pipelined` serializes the same `rg.Record`s with the argilla
client (`Record.api_model().model_dump()`) in a second thread while the previous batch is in
flight, sent strictly in order, one request at a time; `direct` builds the same request JSON
straight from the frame (`quality_metadata`, `quality_notes`, `suggested_answers`), no `rg.Record`
on the way, sent the same way; `concurrent` is `direct` with two requests in flight, which the
server may write in either order. None but `records.log` turns the answer back into `rg.Record`s;
all prototypes pause the collector.

`--profile` samples the server (py-spy) and the benchmark process itself while they push. Raw
figures go to bench/results/argilla-logging-<timestamp>.json. Figures are for comparing runs side
by side on one machine, not absolute claims.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import argilla as rg
import httpx

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
sys.path.insert(0, str(BENCH_DIR))

from dolly_generator import dolly_shaped_frame  # noqa: E402

from curation_assets.argilla_adapter.client import ArgillaClient, ArgillaDataset  # noqa: E402
from curation_assets.argilla_adapter.dataset_settings import QUALITY_FIELD, curation_dataset_settings  # noqa: E402
from curation_assets.argilla_adapter.mapping import (  # noqa: E402
    collector_paused,
    quality_notes,
    record_items,
    suggested_answers,
    to_argilla_records,
)
from curation_assets.argilla_adapter.rest import Connection  # noqa: E402
from curation_assets.local_argilla.process import start_embedded_argilla  # noqa: E402
from curation_assets.local_argilla.runtime import DISABLE_SPEEDUPS_ENV, SPEEDUPS  # noqa: E402
from curation_assets.logic.quality import compute_quality_signals, review_order  # noqa: E402
from curation_assets.logic.shard_sync import quality_metadata  # noqa: E402
from curation_assets.logic.vocabulary import TEXT_FIELDS  # noqa: E402
from curation_assets.quickstart.annotator_client import PENDING_QUEUE_FILTERS  # noqa: E402

# Server variant -> the speedups it runs without.
SERVERS = {
    "shipped": "all",
    "before": "bulk-records,loopback-compression,gc-freeze",  # the embedded default before this work
    "upstream": "bulk-records",
    "fast": "",
    # The embedded default without one speedup, to see what each one is worth.
    **{f"without-{name}": name for name in SPEEDUPS},
}
PAYLOADS = ("fields only", "pipeline without suggestions", "pipeline")
CLIENTS = ("pipeline", "records.log", "records.log-gc-paused", "pipelined", "direct", "concurrent")
PIPELINE_BATCH_SIZE = 500  # resources.LOG_BATCH_SIZE: what the pipeline logs with


def build_fields_only(frame, _signals) -> list[rg.Record]:
    return [
        rg.Record(id=str(row["id"]), fields={name: row[name] for name in TEXT_FIELDS})
        for row in frame.to_dict("records")
    ]


def build_pipeline(frame, signals) -> list[rg.Record]:
    return to_argilla_records(review_order(frame, signals), signals)


def build_pipeline_without_suggestions(frame, signals) -> list[rg.Record]:
    return [
        rg.Record(id=record.id, fields=dict(record.fields), metadata=dict(record.metadata))
        for record in build_pipeline(frame, signals)
    ]


BUILDERS = {
    "fields only": build_fields_only,
    "pipeline without suggestions": build_pipeline_without_suggestions,
    "pipeline": build_pipeline,
}


def fields_only_items(frame, _signals, _question_ids) -> list[dict]:
    # The client sends an empty metadata object, which is stored as such (left out, it would be null).
    return [
        {"external_id": str(row["id"]), "fields": {name: row[name] for name in TEXT_FIELDS}, "metadata": {}}
        for row in frame.to_dict("records")
    ]


def pipeline_items(frame, signals, question_ids: dict[str, str]) -> list[dict]:
    """What `build_pipeline` and the argilla client send, built as JSON from the frame: no rg.Record on the way."""
    signal_by_id = {row["id"]: row for row in signals.to_dict("records")}
    items = []
    for row in review_order(frame, signals).to_dict("records"):
        signal = signal_by_id.get(str(row["id"]))
        items.append(
            {
                "external_id": str(row["id"]),
                "fields": {**{name: row[name] for name in TEXT_FIELDS}, QUALITY_FIELD: quality_notes(signal)},
                "metadata": quality_metadata(signal),
                "suggestions": [
                    {"question_id": question_ids[question], "value": value, "agent": agent, "score": score}
                    for question, value, agent, score in suggested_answers(row, signal)
                ],
            }
        )
    return items


def pipeline_items_without_suggestions(frame, signals, question_ids: dict[str, str]) -> list[dict]:
    return [{**item, "suggestions": []} for item in pipeline_items(frame, signals, question_ids)]


ITEM_BUILDERS = {
    "fields only": fields_only_items,
    "pipeline without suggestions": pipeline_items_without_suggestions,
    "pipeline": pipeline_items,
}


def push_as_annotator_shards(dataset: rg.Dataset, payload: str, frame, signals, batch_size: int) -> float:
    """The pipeline's push as `annotator_shards` runs it: `record_items` over the shard in review order, sent by
    `ArgillaClient.upsert_record_items` (items built while batches are in flight, so building is not apart)."""
    client = dataset._client
    argilla = ArgillaClient(Connection(client.api_url, client.api_key, log_batch_size=batch_size))
    with argilla:
        target = ArgillaDataset.from_api(argilla.request("GET", f"/api/v1/datasets/{dataset.id}"), "ana")
        question_ids = argilla.question_ids(target)
        if payload == "fields only":
            items = iter(fields_only_items(frame, signals, question_ids))
        else:
            items = record_items(review_order(frame, signals), signals, argilla.field_names(target), question_ids)
            if payload == "pipeline without suggestions":
                items = ({**item, "suggestions": []} for item in items)
        argilla.upsert_record_items(target, items)
    return 0.0


def push_with_client(dataset: rg.Dataset, payload: str, frame, signals, batch_size: int) -> float:
    """As the pipeline pushes today: rg.Records, then `dataset.records.log`. Returns the seconds spent building."""
    started = time.perf_counter()
    records = BUILDERS[payload](frame, signals)
    built = time.perf_counter() - started
    dataset.records.log(records, batch_size=batch_size)
    return built


def push_with_client_gc_paused(dataset: rg.Dataset, payload: str, frame, signals, batch_size: int) -> float:
    """The same, with the cyclic collector paused around `records.log` as `to_argilla_records` pauses it."""
    with collector_paused():
        return push_with_client(dataset, payload, frame, signals, batch_size)


def push_pipelined(dataset: rg.Dataset, payload: str, frame, signals, batch_size: int) -> float:
    """rg.Records serialized by the client in a second thread while the previous batch is in flight (collector paused)."""
    started = time.perf_counter()
    records = BUILDERS[payload](frame, signals)
    built = time.perf_counter() - started

    def batches():
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            for record in batch:
                record.dataset = dataset
            yield [record.api_model().model_dump() for record in batch]

    with collector_paused():
        send_in_order(dataset, batches())
    return built


def push_direct(dataset: rg.Dataset, payload: str, frame, signals, batch_size: int) -> float:
    """The bulk request's JSON built from the frame (no rg.Record), sent in order with the next batch prepared meanwhile."""
    started = time.perf_counter()
    question_ids = {question.name: str(question.id) for question in dataset.settings.questions}
    items = ITEM_BUILDERS[payload](frame, signals, question_ids)
    built = time.perf_counter() - started
    send_in_order(dataset, (items[start : start + batch_size] for start in range(0, len(items), batch_size)))
    return built


def push_concurrent(dataset: rg.Dataset, payload: str, frame, signals, batch_size: int) -> float:
    """As `direct`, with two requests in flight: the server may write them in either order."""
    started = time.perf_counter()
    question_ids = {question.name: str(question.id) for question in dataset.settings.questions}
    items = ITEM_BUILDERS[payload](frame, signals, question_ids)
    built = time.perf_counter() - started
    http = dataset._client.api.http_client
    url = f"/api/v1/datasets/{dataset.id}/records/bulk"

    def send(start: int) -> None:
        body = json.dumps({"items": items[start : start + batch_size]}, default=str).encode()
        http.put(url, content=body, headers={"Content-Type": "application/json"}).raise_for_status()

    with collector_paused(), ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(send, range(0, len(items), batch_size)))
    return built


def send_in_order(dataset: rg.Dataset, batches) -> None:
    """One bulk request at a time, in order (the queue order is insertion order); a second thread encodes the next one."""
    http = dataset._client.api.http_client
    url = f"/api/v1/datasets/{dataset.id}/records/bulk"
    prepared: queue.Queue = queue.Queue(maxsize=1)

    def prepare():
        for items in batches:
            prepared.put(json.dumps({"items": items}, default=str).encode())
        prepared.put(None)

    threading.Thread(target=prepare, daemon=True).start()
    while (body := prepared.get()) is not None:
        http.put(url, content=body, headers={"Content-Type": "application/json"}).raise_for_status()


PUSHERS = {
    "pipeline": push_as_annotator_shards,
    "records.log": push_with_client,
    "records.log-gc-paused": push_with_client_gc_paused,
    "pipelined": push_pipelined,
    "direct": push_direct,
    "concurrent": push_concurrent,
}


def run(
    frame, signals, payload: str, server_name: str, client_name: str, batch_size: int, profile_dir: Path | None
) -> dict:
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ[DISABLE_SPEEDUPS_ENV] = SERVERS[server_name]
        try:
            server = start_embedded_argilla(Path(data_dir), annotator_names=["ana"])
        finally:
            os.environ.pop(DISABLE_SPEEDUPS_ENV, None)
        try:
            client = rg.Argilla(api_url=server.url, api_key=server.owner_api_key)
            workspace = rg.Workspace(name="ana", client=client).create()
            workspace.add_user(client.users(username="ana"))
            dataset = rg.Dataset(
                name="bench", workspace=workspace, settings=curation_dataset_settings(), client=client
            ).create()
            label = f"{payload}-{server_name}-{client_name}".replace(" ", "-")
            with (
                sampling_profiler(server.pid, profile_dir, f"{label}-server"),
                sampling_profiler(os.getpid(), profile_dir, f"{label}-client"),
            ):
                started = time.perf_counter()
                build_seconds = PUSHERS[client_name](dataset, payload, frame, signals, batch_size)
                pushed = time.perf_counter()
            read_seconds, listed = read_back(server, str(dataset.id))
            if sorted(listed) != sorted(frame["id"].astype(str)):
                raise RuntimeError(f"read back {len(listed)} records, not the {len(frame)} pushed")
            # The annotation queue lists records in insertion order: the pipeline pushes the flagged ones first.
            pushed_order = review_order(frame, signals) if payload.startswith("pipeline") else frame
            insertion_order_kept = listed == list(pushed_order["id"].astype(str))
            queue_ms = queue_page_median_ms(server, str(dataset.id))
        finally:
            server.stop()
    return {
        "payload": payload,
        "server": server_name,
        "client": client_name,
        "records": len(frame),
        "batch_size": batch_size,
        "build_seconds": round(build_seconds, 3),
        "push_seconds": round(pushed - started, 3),
        "push_records_per_s": round(len(frame) / (pushed - started), 1),
        "read_records_per_s": round(len(frame) / read_seconds, 1),
        "queue_page_median_ms": round(queue_ms, 1),
        "insertion_order_kept": insertion_order_kept,
        "load_average_after": os.getloadavg(),
    }


def read_back(server, dataset_id: str) -> tuple[float, list[str]]:
    """Seconds to read every record with responses, and their external ids in the order listed (insertion order)."""
    owner = {"X-Argilla-Api-Key": server.owner_api_key}
    started = time.perf_counter()
    external_ids: list[str] = []
    while True:
        page = httpx.get(
            f"{server.url}/api/v1/datasets/{dataset_id}/records",
            headers=owner,
            params={"include": "responses", "offset": len(external_ids), "limit": 1000},
            timeout=120,
        ).json()["items"]
        external_ids += [record["external_id"] for record in page]
        if len(page) < 1000:
            return time.perf_counter() - started, external_ids


def queue_page_median_ms(server, dataset_id: str) -> float:
    ana = server.credentials.annotators[0]
    latencies = []
    for _ in range(20):
        started = time.perf_counter()
        httpx.post(
            f"{server.url}/api/v1/me/datasets/{dataset_id}/records/search",
            headers={"X-Argilla-Api-Key": ana.api_key},
            params={"include": ["responses", "suggestions"], "limit": 10},
            json={"filters": PENDING_QUEUE_FILTERS},
            timeout=60,
        ).raise_for_status()
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000


@contextmanager
def sampling_profiler(pid: int, profile_dir: Path | None, name: str):
    """py-spy samples a process (stacks in raw collapsed form, to profile_dir/name.txt) while the block runs."""
    if profile_dir is None:
        yield
        return
    output = profile_dir / f"{name}.txt"
    spy = subprocess.Popen(
        [shutil.which("py-spy", path=Path(sys.executable).parent) or "py-spy", "record", "--pid", str(pid), "--format", "raw",
         "--rate", "200", "--threads", "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches before the first batch is sent
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


# Leaf frames of a thread that waits (aiosqlite's worker on its queue, the event loop in uvloop,
# a client thread on a socket or a queue): py-spy cannot tell them from work.
IDLE_LEAVES = ("Connection.run (aiosqlite/core.py:107)", "Runner.run (asyncio/runners.py", "select (selectors.py",
               "recv_into", "SyncStream.read (httpcore", "wait (threading.py", "get (queue.py", "_wait_for_tstate_lock", "sleep")  # fmt: skip
# Frames every sample goes through (interpreter start, event loop, ASGI plumbing): they say nothing.
PLUMBING = ("runpy", "asyncio/", "uvicorn/main", "uvicorn/server", "threading.py", "anyio/", "starlette/middleware",
            "starlette/routing", "starlette/_exception", "starlette/applications", "fastapi/applications", "thread (",
            "<module>", "local_argilla/cli.py", "local_argilla/server.py", "local_argilla/__main__")  # fmt: skip


def summarize_profile(raw_stacks: Path, top: int = 30) -> list[str]:
    """Share of the busy samples per function (inclusive, plumbing left out), then the top leaves (self time)."""
    inclusive: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    busy = 0
    for line in raw_stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames, count = stack.split(";"), int(count_text)
        if any(idle in frames[-1] for idle in IDLE_LEAVES):
            continue
        busy += count
        functions = [frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0] + ")" for frame in frames]
        for function in set(functions):
            if not any(part in function for part in PLUMBING):
                inclusive[function] += count
        leaves[functions[-1]] += count
    lines = [f"busy samples: {busy} ({busy / 200:.1f} s at 200 Hz)"]
    lines += [f"{100 * count / max(busy, 1):5.1f}%  {function}" for function, count in inclusive.most_common(top)]
    lines += ["self:"] + [
        f"{100 * count / max(busy, 1):5.1f}%  {function}" for function, count in leaves.most_common(top // 2)
    ]
    return lines


def side_by_side_order(configurations: list) -> list:
    """A B then B A: each configuration runs once early and once late."""
    return configurations + configurations[::-1]


def summary(results: list[dict]) -> list[dict]:
    """Per payload, server and client: records/s over both runs, and ratios to the fields-only push and to upstream."""
    grouped: dict = collections.defaultdict(list)
    for result in results:
        grouped[(result["payload"], result["server"], result["client"])].append(result)
    rates = {
        key: sum(r["records"] for r in runs) / sum(r["push_seconds"] for r in runs) for key, runs in grouped.items()
    }
    rows = []
    for (payload, server, client), rate in rates.items():
        fields_only = rates.get(("fields only", server, client))
        upstream = rates.get((payload, "upstream", client))
        rows.append(
            {
                "payload": payload,
                "server": server,
                "client": client,
                "runs_records_per_s": [r["push_records_per_s"] for r in grouped[(payload, server, client)]],
                "records_per_s": round(rate, 1),
                "slowdown_vs_fields_only": round(fields_only / rate, 2) if fields_only else None,
                "speedup_vs_upstream": round(rate / upstream, 2) if upstream else None,
                "read_records_per_s": round(
                    statistics.mean(r["read_records_per_s"] for r in grouped[(payload, server, client)]), 1
                ),
                "queue_page_median_ms": round(
                    statistics.mean(r["queue_page_median_ms"] for r in grouped[(payload, server, client)]), 1
                ),
                "insertion_order_kept": all(r["insertion_order_kept"] for r in grouped[(payload, server, client)]),
            }
        )
    return rows


def machine() -> dict:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cores": os.cpu_count(), "memory_gib": round(memory_gib, 1), "python": sys.version.split()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=15_000)
    parser.add_argument("--batch-size", type=int, default=PIPELINE_BATCH_SIZE)
    parser.add_argument("--servers", nargs="+", choices=list(SERVERS), default=["upstream", "fast"])
    parser.add_argument("--payloads", nargs="+", choices=PAYLOADS, default=list(PAYLOADS))
    parser.add_argument("--client", nargs="+", choices=CLIENTS, default=["pipeline"], dest="clients")
    parser.add_argument(
        "--profile", action="store_true", help="sample the server and this process with py-spy while they push"
    )
    parser.add_argument("--out", type=Path, help="raw JSON (default bench/results/argilla-logging-<timestamp>.json)")
    arguments = parser.parse_args()

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = arguments.out or RESULTS_DIR / f"argilla-logging-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    profile_dir = out.with_suffix("") if arguments.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
    about = {
        "machine": machine(),
        "started": stamp,
        "command": " ".join(sys.argv),
        "load_average_before": os.getloadavg(),
    }
    print(f"machine: {about['machine']}; load average {about['load_average_before']}", flush=True)

    frame = dolly_shaped_frame(arguments.records)
    signals = compute_quality_signals(frame)
    results = []
    configurations = [
        (payload, server_name, client_name)
        for payload in arguments.payloads
        for client_name in arguments.clients
        for server_name in arguments.servers
    ]
    # A B then B A over every configuration: each one runs once early and once late.
    for payload, server_name, client_name in side_by_side_order(configurations):
        result = run(frame, signals, payload, server_name, client_name, arguments.batch_size, profile_dir)
        results.append(result)
        print(f"done: {payload}, {server_name} server, {client_name}: {result['push_records_per_s']:.0f} records/s "
              f"(build {result['build_seconds']:.2f} s of {result['push_seconds']:.2f} s)", flush=True)  # fmt: skip
    about["load_average_after"] = os.getloadavg()
    rows = summary(results)
    out.write_text(json.dumps({**about, "summary": rows, "runs": results}, indent=1))

    print(f"\n{arguments.records} records, batch {arguments.batch_size}; load average before {about['load_average_before']}, "
          f"after {about['load_average_after']}")  # fmt: skip
    print(
        "| payload | server | client | push records/s (runs) | x fields-only time | vs upstream | order kept | read records/s | queue page ms |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |")
    for row in rows:
        runs = ", ".join(f"{rate:.0f}" for rate in row["runs_records_per_s"])
        print(
            f"| {row['payload']} | {row['server']} | {row['client']} | **{row['records_per_s']:.0f}** ({runs}) "
            f"| {row['slowdown_vs_fields_only'] or 'n/a'} | {row['speedup_vs_upstream'] or 'n/a'} "
            f"| {'yes' if row['insertion_order_kept'] else '**no**'} | {row['read_records_per_s']:.0f} | {row['queue_page_median_ms']:.1f} |"
        )
    if profile_dir:
        for raw in sorted(profile_dir.glob("*.txt")):
            print(f"\nprofile {raw.stem}:")
            print("\n".join(summarize_profile(raw)))
    print(f"\nraw figures: {out}")


if __name__ == "__main__":
    main()
