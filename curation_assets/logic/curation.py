"""Build and publish the curated dataset: submitted answers replace the fields, the rest is left out."""

from __future__ import annotations

import pandas as pd

from .changes import normalise
from .vocabulary import ResponseStatus

CURATED_COLUMNS = ["id", "category", "instruction", "context", "response", "provenance", "annotator"]
# The Hub's size buckets for a dataset card's `size_categories`, smallest first: (upper bound, label).
SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]


def curate(feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per record with a submitted response; `provenance` is "human" if the answers changed it, else "original".

    Should a record carry several submitted responses, the latest one wins (by updated_at).
    """
    submitted = feedback[feedback["status"] == ResponseStatus.SUBMITTED].sort_values(["record_id", "updated_at"])
    latest = submitted.drop_duplicates("record_id", keep="last")
    curated = pd.DataFrame(
        {
            "id": latest["record_id"].astype(str),
            "category": latest["category"],
            "instruction": _answer_or(latest["new_instruction"], latest["instruction"]),
            # An absent optional input means "no input": "" rather than the original context.
            "context": _answer_or(latest["new_input"], ""),
            "response": _answer_or(latest["new_response"], latest["response"]),
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
    touched = set(feedback.loc[feedback["status"] != ResponseStatus.PENDING, "record_id"].astype(str))
    untouched = feedback[~feedback["record_id"].astype(str).isin(touched)].drop_duplicates("record_id")
    fixable = signals[signals["fixable"]].set_index("id")
    candidates = untouched[untouched["record_id"].astype(str).isin(fixable.index)]
    cleaned = fixable.loc[candidates["record_id"].astype(str)]
    return pd.DataFrame(
        {
            "id": candidates["record_id"].astype(str).to_numpy(),
            "category": candidates["category"].to_numpy(),
            "instruction": cleaned["clean_instruction"].to_numpy(),
            "context": cleaned["clean_context"].to_numpy(),
            "response": cleaned["clean_response"].to_numpy(),
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


def within_source(feedback: pd.DataFrame, source_ids: pd.Series) -> tuple[pd.DataFrame, int]:
    """The feedback rows of records in the declared source, and how many answers lie outside it.

    After a source is replaced, the old source's answered records stay in Argilla with their
    answers (nothing is lost), but they are not part of what this project curates.
    """
    inside = feedback["record_id"].astype(str).isin(set(source_ids.astype(str)))
    outside_answers = int((~inside & (feedback["status"] != ResponseStatus.PENDING)).sum())
    return feedback[inside].reset_index(drop=True), outside_answers


def size_category(records: int) -> str:
    """The Hub's `size_categories` bucket for this many records."""
    return next((label for bound, label in SIZE_CATEGORIES if records < bound), "1B<n<10B")


def _answer_or(answers: pd.Series, fallback) -> pd.Series:
    """The answer where there is one, else the fallback (a column or a constant); text-typed even when every answer is missing."""
    return answers.astype(object).where(answers.notna(), fallback).astype(str)


def _id_sort_key(ids: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(ids, errors="coerce")
    return numeric if numeric.notna().all() else ids


def dataset_card(
    curated: pd.DataFrame, statistics_markdown: str, *, project: str, source: str, license: str, attribution: str
) -> str:
    """README.md for the published dataset: licence, source, provenance, statistics and attribution."""
    provenance = curated["provenance"].value_counts().to_dict()
    attribution_section = attribution.strip() or (
        "_No attribution declared: set `publish.attribution` in the project's defs.yaml if the source requires one._"
    )
    return f"""---
license: {license}
task_categories:
- text-generation
tags:
- instruction-tuning
- argilla
- curation_assets
size_categories:
- {size_category(len(curated))}
---

# {project}: curated instruction records

Instruction/response records from `{source}`, reviewed by annotators in Argilla: each record
here was **submitted** by an annotator, whose answers replace the original instruction, context
(input) and response. Discarded, draft and unanswered records are left out.

- records: {len(curated)}
- provenance: {provenance} ("human": the annotator changed it; "original": submitted unchanged;
  "rule": nobody annotated it, and the automatic pass removed citation markers or repaired whitespace/encoding)
- columns: {", ".join(CURATED_COLUMNS)}

## Statistics

{statistics_markdown}

## License and attribution

License: `{license}`.

{attribution_section}
"""
