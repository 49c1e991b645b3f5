"""Writing the curated dataset to disk and to the Hugging Face Hub: the I/O of `curated_dolly`."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

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
    datasets.Dataset.from_pandas(curated, preserve_index=False).save_to_disk(str(paths["hf_dataset"]))
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
    import datasets
    from huggingface_hub import DatasetCard

    datasets.Dataset.from_pandas(curated, preserve_index=False).push_to_hub(repo_id, token=token, private=private)
    DatasetCard(card).push_to_hub(repo_id, token=token)
    return f"https://huggingface.co/datasets/{repo_id}"
