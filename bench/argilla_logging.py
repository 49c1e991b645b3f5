"""Embedded Argilla throughput: log Dolly-shaped records, read them back, time a UI queue page.

    python bench/argilla_logging.py --records 15000 [--batch-size 500] [--profile]

Prints records/s for logging (the real argilla client, as users log) and for reading back
with responses, plus the median latency of the annotation page's queue query. Figures
are for comparing runs side by side on one machine, not absolute claims.
"""

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import argilla as rg
import httpx

from curation_assets.annotation_settings import curation_dataset_settings
from curation_assets.annotator_client import PENDING_QUEUE_FILTERS
from curation_assets.argilla_mapping import to_argilla_records
from curation_assets.logic.source import load_shipped_dolly_excerpt
from curation_assets.local_argilla.process import start_embedded_argilla


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


def run(records: int, batch_size: int, eager_webhook_events: bool = False) -> dict:
    import pandas as pd

    rows = dolly_shaped_rows(records)
    with tempfile.TemporaryDirectory() as data_dir:
        os.environ["CURATION_ARGILLA_EAGER_WEBHOOK_EVENTS"] = "1" if eager_webhook_events else "0"
        server = start_embedded_argilla(Path(data_dir), annotator_names=["ana"])
        try:
            client = rg.Argilla(api_url=server.url, api_key=server.owner_api_key)
            workspace = rg.Workspace(name="ana", client=client).create()
            workspace.add_user(client.users(username="ana"))
            dataset = rg.Dataset(name="bench", workspace=workspace, settings=curation_dataset_settings(), client=client).create()
            argilla_records = to_argilla_records(pd.DataFrame(rows))

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
    return {
        "server": "argilla-server's own event path" if eager_webhook_events else "events only for enabled webhooks",
        "records": records,
        "batch_size": batch_size,
        "log_records_per_s": records / logging_seconds,
        "read_records_per_s": records / reading_seconds,
        "queue_page_median_ms": statistics.median(latencies) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=15_000)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256, 500], help="compare these side by side")
    arguments = parser.parse_args()
    print(f"machine: {machine()}")
    print("| server | records | batch | log records/s | read records/s | queue page median ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    variants = [(batch_size, eager) for eager in (True, False) for batch_size in arguments.batch_size]
    for batch_size, eager in variants:
        result = run(arguments.records, batch_size, eager_webhook_events=eager)
        print(
            f"| {result['server']} | {result['records']} | {result['batch_size']} | {result['log_records_per_s']:.0f} "
            f"| {result['read_records_per_s']:.0f} | {result['queue_page_median_ms']:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
