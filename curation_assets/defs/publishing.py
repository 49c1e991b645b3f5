"""Writing the curated dataset to disk and to the Hugging Face Hub: the I/O of `curated_dolly`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from .jsonl import write_jsonl

HUB_TOKEN_ENV = "HF_TOKEN"


def write_curated(curated: pd.DataFrame, card: str, output_dir: Path) -> dict[str, Path]:
    """Save as a Hugging Face dataset on disk, parquet and jsonl, with the card beside them."""
    import datasets

    # A progress bar per save is noise in a run's log.
    datasets.disable_progress_bars()
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "hf_dataset": output_dir / "hf_dataset",
        "parquet": output_dir / "curated_dolly.parquet",
        "jsonl": output_dir / "curated_dolly.jsonl",
        "card": output_dir / "README.md",
    }
    records_dataset(curated).save_to_disk(str(paths["hf_dataset"]))
    curated.to_parquet(paths["parquet"], index=False)
    write_jsonl(curated, paths["jsonl"], force_ascii=False)
    paths["card"].write_text(card, encoding="utf-8")
    return paths


def push_to_hub(curated: pd.DataFrame, card: str, repo_id: str, private: bool = True, token: str | None = None) -> str:
    """Publish the records and the card to a Hub dataset repo; without a token, a clear error instead of an anonymous
    attempt."""
    token = token or os.environ.get(HUB_TOKEN_ENV)
    if not token:
        raise PermissionError(
            f"pushing to {repo_id!r} needs a Hugging Face token with write access: set {HUB_TOKEN_ENV} "
            "(or leave publish.hub_repo_id empty in the project's defs.yaml to only write local files)"
        )
    from huggingface_hub import DatasetCard

    records_dataset(curated).push_to_hub(repo_id, token=token, private=private)
    DatasetCard(card).push_to_hub(repo_id, token=token)
    return f"https://huggingface.co/datasets/{repo_id}"


def records_dataset(curated: pd.DataFrame):
    """`datasets.Dataset.from_pandas(curated, preserve_index=False)`, with a fingerprint of our own.

    datasets fingerprints a new in-memory dataset by pickling its whole table to hash the bytes: 0.9 GiB more for a
    moment at 1,000,000 source records, the step's peak. `table_digest` hashes the same content where the table
    holds it. Like datasets' own, it changes whenever the records do, so a cache keyed by it is never stale.
    """
    from datasets import Dataset
    from datasets.table import InMemoryTable

    table = InMemoryTable.from_pandas(df=curated, preserve_index=False)
    return Dataset(table, fingerprint=table_digest(table.table))


def table_digest(table: pa.Table) -> str:
    """A digest of an Arrow table's schema and values, read from its buffers without a copy.

    A chunk's offset and length are hashed with its buffers: two slices of one array share every buffer.
    Different records never give one digest; equal records may give two (bytes Arrow leaves undefined, under a
    null value, say), which costs a cache keyed by it a miss, not a wrong hit.
    """
    digest = hashlib.blake2b(memoryview(table.schema.serialize()), digest_size=16)
    for column in table.columns:
        for chunk in column.chunks:
            digest.update(f"|{chunk.offset},{len(chunk)},{chunk.null_count}|".encode())
            for buffer in chunk.buffers():
                digest.update(b"-" if buffer is None else memoryview(buffer))
    return digest.hexdigest()
