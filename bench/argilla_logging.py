"""Embedded Argilla throughput: log Dolly-shaped records, read them back, time a UI queue page.

    python bench/argilla_logging.py --records 15000 [--batch-size 256 500] [--profile]

Prints records/s for logging (the real argilla client, as users log) and for reading back
with responses, plus the median latency of the annotation page's queue query, for the
server as shipped and with each of the embedded launcher's speedups (runtime.SPEEDUPS),
side by side in one invocation. `--profile` samples the server with py-spy while it logs.
Figures are for comparing runs side by side on one machine, not absolute claims.
"""

import argparse
import collections
import os
import shutil
import signal
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import argilla as rg
import httpx

from curation_assets.annotation_settings import curation_dataset_settings
from curation_assets.quickstart.annotator_client import PENDING_QUEUE_FILTERS
from curation_assets.argilla_mapping import to_argilla_records
from curation_assets.defs.source_loading import load_shipped_dolly_excerpt
from curation_assets.local_argilla.process import start_embedded_argilla
from curation_assets.local_argilla.runtime import DISABLE_SPEEDUPS_ENV


def dolly_shaped_rows(count: int, seed: int = 0) -> list[dict]:
    """Rows whose category mix and field lengths are drawn from the shipped real excerpt."""
    sample = load_shipped_dolly_excerpt().to_dict("records")
    randomness = random.Random(seed)
    words = " ".join(row["context"] + " " + row["response"] for row in sample).split()

    def text_like(original: str) -> str:
        length = max(1, len(original.split()))
        return " ".join(randomness.choice(words) for _ in range(length))

    rows = []
    for index in range(count):
        model = randomness.choice(sample)
        rows.append(
            {
                "id": str(index),
                "category": model["category"],
                "instruction": text_like(model["instruction"]),
                "context": text_like(model["context"]) if model["context"] else "",
                "response": text_like(model["response"]),
            }
        )
    return rows


def machine() -> str:
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {memory_gib:.0f} GiB"


VARIANTS = {
    "argilla-server as shipped": "all",
    "+ webhook events only when enabled": "settings-adapters",
    "+ settings adapters built once": "webhook-events",
    "embedded default (both)": "",
}


def run(records: int, batch_size: int, disabled_speedups: str, profile_to: Path | None = None) -> dict:
    import pandas as pd

    rows = dolly_shaped_rows(records)
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ[DISABLE_SPEEDUPS_ENV] = disabled_speedups
        server = start_embedded_argilla(Path(data_dir), annotator_names=["ana"])
        try:
            client = rg.Argilla(api_url=server.url, api_key=server.owner_api_key)
            workspace = rg.Workspace(name="ana", client=client).create()
            workspace.add_user(client.users(username="ana"))
            dataset = rg.Dataset(name="bench", workspace=workspace, settings=curation_dataset_settings(), client=client).create()
            argilla_records = to_argilla_records(pd.DataFrame(rows))

            with sampling_profiler(server.pid, profile_to):
                started = time.perf_counter()
                dataset.records.log(argilla_records, batch_size=batch_size)
                logging_seconds = time.perf_counter() - started

            owner = {"X-Argilla-Api-Key": server.owner_api_key}
            started = time.perf_counter()
            read = 0
            while True:
                page = httpx.get(
                    f"{server.url}/api/v1/datasets/{dataset.id}/records",
                    headers=owner,
                    params={"include": "responses", "offset": read, "limit": 1000},
                    timeout=120,
                ).json()["items"]
                read += len(page)
                if len(page) < 1000:
                    break
            reading_seconds = time.perf_counter() - started
            assert read == records, f"read back {read} of {records}"

            ana = server.credentials.annotators[0]
            latencies = []
            for _ in range(20):
                started = time.perf_counter()
                httpx.post(
                    f"{server.url}/api/v1/me/datasets/{dataset.id}/records/search",
                    headers={"X-Argilla-Api-Key": ana.api_key},
                    params={"include": ["responses", "suggestions"], "limit": 10},
                    json={"filters": PENDING_QUEUE_FILTERS},
                    timeout=60,
                ).raise_for_status()
                latencies.append(time.perf_counter() - started)
        finally:
            server.stop()
            os.environ.pop(DISABLE_SPEEDUPS_ENV, None)
    return {
        "records": records,
        "batch_size": batch_size,
        "log_records_per_s": records / logging_seconds,
        "read_records_per_s": records / reading_seconds,
        "queue_page_median_ms": statistics.median(latencies) * 1000,
    }


@contextmanager
def sampling_profiler(pid: int, output: Path | None):
    """py-spy samples the server process (stacks in raw collapsed form) while the block runs."""
    if output is None:
        yield
        return
    spy = subprocess.Popen(
        [shutil.which("py-spy", path=Path(sys.executable).parent) or "py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
         "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches before the first batch is sent
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def summarize_profile(raw_stacks: Path, top: int = 15) -> list[str]:
    """Share of the server's busy samples per function (inclusive), SQLite's own work separated.

    aiosqlite's worker thread waits on a queue at `Connection.run`; py-spy cannot tell that
    wait from work, so samples parked there are idle time and are left out of the total.
    """
    inclusive: collections.Counter = collections.Counter()
    busy = sqlite = 0
    for line in raw_stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames, count = stack.split(";"), int(count_text)
        if frames[-1].startswith("Connection.run (aiosqlite/core.py:107)"):
            continue
        busy += count
        if any("aiosqlite/core.py" in frame for frame in frames):
            sqlite += count
            continue
        for function in {frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0] + ")" for frame in frames}:
            if any(package in function for package in ("argilla_server", "sqlalchemy/orm", "pydantic", "brotli")):
                inclusive[function] += count
    lines = [f"server busy samples: {busy}; inside SQLite (aiosqlite thread): {100 * sqlite / max(busy, 1):.1f}%"]
    lines += [f"{100 * count / max(busy, 1):5.1f}%  {function}" for function, count in inclusive.most_common(top)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=15_000)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[500], help="compare these side by side")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy while it logs")
    arguments = parser.parse_args()
    print(f"machine: {machine()}")
    rows = []
    profiles = {}
    for name in arguments.variants:
        for batch_size in arguments.batch_size:
            profile_to = None
            if arguments.profile:
                profile_to = Path(tempfile.mkstemp(prefix="argilla-logging-", suffix=".txt")[1])
            result = run(arguments.records, batch_size, VARIANTS[name], profile_to)
            rows.append((name, result))
            if profile_to:
                profiles[f"{name}, batch {batch_size}"] = summarize_profile(profile_to)
                profile_to.unlink()
            print(f"done: {name}, batch {batch_size}: {result['log_records_per_s']:.0f} records/s", flush=True)
    shipped = next((result for name, result in rows if VARIANTS[name] == "all"), None)
    print("\n| server | records | batch | log records/s | vs shipped | read records/s | queue page median ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, result in rows:
        ratio = f"{result['log_records_per_s'] / shipped['log_records_per_s']:.2f}x" if shipped else "n/a"
        print(
            f"| {name} | {result['records']} | {result['batch_size']} | {result['log_records_per_s']:.0f} | {ratio} "
            f"| {result['read_records_per_s']:.0f} | {result['queue_page_median_ms']:.1f} |"
        )
    for name, lines in profiles.items():
        print(f"\nprofile while logging ({name}):")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
