"""Build and publish the curated dataset: submitted answers replace the fields, the rest is left out."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .changes import normalise
from .jsonl import write_jsonl
from .source import DATA_DIR

CURATED_COLUMNS = ["id", "category", "instruction", "context", "response", "provenance", "annotator"]
HUB_TOKEN_ENV = "HF_TOKEN"


def curate(feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per record with a submitted response; `provenance` is "human" if the answers changed it, else "original".

    Should a record carry several submitted responses, the latest one wins (by updated_at).
    """
    submitted = feedback[feedback["status"] == "submitted"].sort_values(["record_id", "updated_at"])
    latest = submitted.drop_duplicates("record_id", keep="last")
    curated = pd.DataFrame(
        {
            "id": latest["record_id"].astype(str),
            "category": latest["category"],
            "instruction": latest["new_instruction"].fillna(latest["instruction"]),
            # An absent optional input means "no input": "" rather than the original context.
            "context": latest["new_input"].fillna(""),
            "response": latest["new_response"].fillna(latest["response"]),
            "annotator": latest["annotator"],
        }
    )
    unchanged = (
        (curated["instruction"].map(normalise) == latest["instruction"].map(normalise))
        & (curated["context"].map(normalise) == latest["context"].map(normalise))
        & (curated["response"].map(normalise) == latest["response"].map(normalise))
    )
    curated["provenance"] = ["original" if same else "human" for same in unchanged]
    curated = curated[CURATED_COLUMNS]
    if curated.empty:  # with no submission yet pandas types the columns as floats; keep them text-typed
        curated = curated.astype(object)
    return curated.sort_values("id", key=_id_sort_key).reset_index(drop=True)


def rule_fixed_records(feedback: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """Records nobody has touched (pending everywhere: no submission, discard or draft) that a safe rule can clean,
    with the cleaned texts and provenance "rule" (citation markers removed, whitespace and encoding repaired)."""
    touched = set(feedback.loc[feedback["status"] != "pending", "record_id"].astype(str))
    untouched = feedback[~feedback["record_id"].astype(str).isin(touched)].drop_duplicates("record_id")
    fixable = signals[signals["fixable"]].set_index("id")
    candidates = untouched[untouched["record_id"].astype(str).isin(fixable.index)]
    cleaned = fixable.loc[candidates["record_id"].astype(str)]

    def text(field: str) -> pd.Series:  # the signals hold a cleaned text only where a rule changed it
        return pd.Series(cleaned[f"clean_{field}"].to_numpy(), dtype=object).fillna(
            pd.Series(candidates[field].to_numpy(), dtype=object)
        )

    return pd.DataFrame(
        {
            "id": candidates["record_id"].astype(str).to_numpy(),
            "category": candidates["category"].to_numpy(),
            "instruction": text("instruction").to_numpy(),
            "context": text("context").to_numpy(),
            "response": text("response").to_numpy(),
            "provenance": "rule",
            "annotator": "",
        },
        columns=CURATED_COLUMNS,
    )


def curate_with_rule_fixes(feedback: pd.DataFrame, signals: pd.DataFrame, apply_rule_fixes: bool) -> pd.DataFrame:
    """The curated records; with `apply_rule_fixes`, plus the untouched records a safe rule cleaned."""
    curated = curate(feedback)
    if not apply_rule_fixes:
        return curated
    combined = pd.concat([curated, rule_fixed_records(feedback, signals)], ignore_index=True)
    return combined.sort_values("id", key=_id_sort_key).reset_index(drop=True)


def _id_sort_key(ids: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(ids, errors="coerce")
    return numeric if numeric.notna().all() else ids


def dataset_card(curated: pd.DataFrame, statistics_markdown: str, source: str) -> str:
    """README.md for the published dataset: licence, attribution, provenance and statistics."""
    attribution = (DATA_DIR / "README.md").read_text(encoding="utf-8").split("## License and attribution (CC BY-SA 3.0)")[1]
    provenance = curated["provenance"].value_counts().to_dict()
    return f"""---
license: cc-by-sa-3.0
language:
- en
task_categories:
- text-generation
tags:
- instruction-tuning
- argilla
- dolly
size_categories:
- n<1K
---

# Curated Dolly (curation_assets)

Instruction/response records from Databricks' Dolly 15k (source: `{source}`), reviewed by
annotators in Argilla: each record here was **submitted** by an annotator, whose answers replace
the original instruction, context (input) and response. Discarded, draft and unanswered records
are left out.

- records: {len(curated)}
- provenance: {provenance} ("human": the annotator changed it; "original": submitted unchanged;
  "rule": nobody annotated it, and the automatic pass removed citation markers or repaired whitespace/encoding)
- columns: {", ".join(CURATED_COLUMNS)}

## Statistics

{statistics_markdown}

## License and attribution (CC BY-SA 3.0)
{attribution}"""


def write_curated(curated: pd.DataFrame, card: str, output_dir: Path) -> dict[str, Path]:
    """Save as a Hugging Face dataset on disk, parquet and jsonl, with the card beside them."""
    import datasets

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


def push_to_hub(curated: pd.DataFrame, card: str, repo_id: str, token: str | None = None) -> str:
    """Publish to the Hub; without a token, a clear error instead of an anonymous attempt."""
    token = token or os.environ.get(HUB_TOKEN_ENV)
    if not token:
        raise PermissionError(
            f"pushing to {repo_id!r} needs a Hugging Face token with write access: set {HUB_TOKEN_ENV} "
            "(or leave hub_repo_id empty to only write local files)"
        )
    import datasets
    from huggingface_hub import DatasetCard

    datasets.Dataset.from_pandas(curated, preserve_index=False).push_to_hub(repo_id, token=token)
    DatasetCard(card).push_to_hub(repo_id, token=token)
    return f"https://huggingface.co/datasets/{repo_id}"
