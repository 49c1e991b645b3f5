"""Build and publish the curated dataset: submitted answers replace the fields, the rest is left out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .changes import normalise
from .ids import ids_in, key_rows
from .review import ACCEPT, HOLD_OUT, MAJORITY, disagreement_reason, majority, versions_by_record
from .vocabulary import ResponseStatus

RULE_FIXED_FIELDS = ("instruction", "context", "response")
CURATED_COLUMNS = ["id", "category", "instruction", "context", "response", "provenance", "annotator"]
# The feedback columns a curated row is made of (`_as_curated`): the rows chosen are copied with these alone.
ANSWER_SOURCE_COLUMNS = [
    "record_id", "category", "annotator", "instruction", "context", "response",
    "new_instruction", "new_input", "new_response",
]  # fmt: skip
# Rows compared at a time as Python strings (`_unchanged`): each slice's strings are made and dropped before the next.
COMPARED_ROWS_PER_SLICE = 20_000
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


@dataclass(frozen=True)
class ReviewPolicy:
    """How records that several annotators finished are settled: the similarity under which versions disagree,
    and what a disagreement not yet adjudicated gives (HOLD_OUT: nothing; MAJORITY: the majority's outcome)."""

    similarity_threshold: float = 0.8
    until_adjudicated: str = HOLD_OUT


def curate(
    feedback: pd.DataFrame, adjudications: pd.DataFrame | None = None, policy: ReviewPolicy = ReviewPolicy()
) -> pd.DataFrame:
    """One row per record to publish, with the final texts, `provenance` and the `annotator` who decided.

    - A record one annotator submitted, or several submitted alike: the latest submission
      (provenance "human" if it changed the record, else "original").
    - A disagreement (see logic/review.py) a reviewer adjudicated: the reviewer's final texts,
      provenance "adjudicated", or nothing if they discarded it.
    - A disagreement not adjudicated yet: nothing under HOLD_OUT; under MAJORITY the majority's
      version, provenance "majority" (nothing if most discarded it, or on a tie).
    """
    disagreeing = disagreeing_records(feedback, policy.similarity_threshold)
    is_submitted = (feedback["status"] == ResponseStatus.SUBMITTED).to_numpy(dtype=bool, na_value=False)
    # Each agreed record's latest submission, chosen on the key columns alone (labelled by position) and then taken
    # once: the rows sorting and deduplicating the submitted rows with every text gave, without copying those texts.
    latest = key_rows(feedback, is_submitted, ["record_id", "updated_at"])
    latest = latest[~ids_in(latest["record_id"], disagreeing)].sort_values(["record_id", "updated_at"])
    chosen = latest.drop_duplicates("record_id", keep="last").index.to_numpy()
    parts = [_as_curated(feedback[ANSWER_SOURCE_COLUMNS].iloc[chosen])]
    decided = None
    if adjudications is not None:
        # A verdict to publish with an empty instruction or response is not a decision yet: the record keeps waiting.
        complete = (adjudications["verdict"] != ACCEPT) | (
            adjudications["new_instruction"].fillna("").str.strip().ne("")
            & adjudications["new_response"].fillna("").str.strip().ne("")
        )
        decided = adjudications[ids_in(adjudications["record_id"], disagreeing) & complete]
    if decided is not None and len(decided):
        accepted = decided[decided["verdict"] == ACCEPT]
        categories = feedback[["record_id", "category"]].drop_duplicates("record_id").set_index("record_id")["category"]
        parts.append(
            pd.DataFrame(
                {
                    "id": accepted["record_id"].astype(str),
                    "category": accepted["record_id"].map(categories),
                    "instruction": accepted["new_instruction"].fillna("").astype(str),
                    "context": accepted["new_input"].fillna("").astype(str),
                    "response": accepted["new_response"].fillna("").astype(str),
                    "provenance": "adjudicated",
                    "annotator": accepted["reviewer"],
                },
                columns=CURATED_COLUMNS,
            )
        )
    if policy.until_adjudicated == MAJORITY:
        waiting = disagreeing - set(decided["record_id"] if decided is not None else [])
        versions = versions_by_record(feedback)
        winners = {record_id: majority(versions[record_id]) for record_id in waiting}
        chosen = [(record_id, winner.annotator) for record_id, winner in winners.items() if winner is not None]
        keys = pd.MultiIndex.from_tuples(chosen, names=["record_id", "annotator"]) if chosen else None
        if keys is not None:
            submitted = feedback[is_submitted]
            picked = submitted.set_index(["record_id", "annotator"]).loc[keys].reset_index()
            parts.append(_as_curated(picked).assign(provenance="majority"))
    curated = (
        pd.concat([part for part in parts if len(part)], ignore_index=True) if any(len(p) for p in parts) else parts[0]
    )
    if curated.empty:  # with no submission yet pandas types the columns as floats; keep them text-typed
        curated = curated.astype(object)
    return curated[CURATED_COLUMNS].sort_values("id", key=_id_sort_key).reset_index(drop=True)


def disagreeing_records(feedback: pd.DataFrame, threshold: float) -> set[str]:
    return {
        record_id
        for record_id, versions in versions_by_record(feedback).items()
        if disagreement_reason(versions, threshold) is not None
    }


def _as_curated(answers: pd.DataFrame) -> pd.DataFrame:
    """Feedback rows as curated rows: the answers replace the fields; provenance "human" if they changed any, else
    "original"."""
    curated = pd.DataFrame(
        {
            "id": answers["record_id"].astype(str),
            "category": answers["category"],
            "instruction": _answer_or(answers["new_instruction"], answers["instruction"]),
            # An absent optional input means "no input": "" rather than the original context.
            "context": _answer_or(answers["new_input"], ""),
            "response": _answer_or(answers["new_response"], answers["response"]),
            "annotator": answers["annotator"],
        }
    )
    curated["provenance"] = np.where(_unchanged(curated, answers), "original", "human").tolist()
    return curated[CURATED_COLUMNS]


def _unchanged(curated: pd.DataFrame, answers: pd.DataFrame) -> np.ndarray:
    """Per row, whether every curated text equals the original once normalised (`normalise`).

    Row by row on plain Python objects: identical texts, most answers, are equal without normalising,
    and a row whose instruction changed needs no look at its context and response. Over pandas'
    `map` on Arrow strings this cut `_as_curated` by half at 15,000 records. A slice of rows at a
    time: the six texts of every row as Python strings at once were 0.6 GiB at 1,000,000 records.
    """
    starts = range(0, max(len(curated), 1), COMPARED_ROWS_PER_SLICE)
    return np.concatenate(
        [
            _unchanged_slice(
                curated.iloc[start : start + COMPARED_ROWS_PER_SLICE],
                answers.iloc[start : start + COMPARED_ROWS_PER_SLICE],
            )
            for start in starts
        ]  # fmt: skip
    )


def _unchanged_slice(curated: pd.DataFrame, answers: pd.DataFrame) -> np.ndarray:
    pairs = [
        (curated[field].to_numpy(dtype=object), answers[field].to_numpy(dtype=object))
        for field in ("instruction", "context", "response")
    ]
    rows = zip(*(array for pair in pairs for array in pair))
    return np.fromiter(
        (
            _same_text(instruction, original_instruction)
            and _same_text(context, original_context)
            and _same_text(response, original_response)
            for instruction, original_instruction, context, original_context, response, original_response in rows
        ),
        dtype=bool,
        count=len(curated),
    )


def _same_text(text, original) -> bool:
    return (isinstance(text, str) and text == original) or normalise(text) == normalise(original)


def rule_fixed_records(feedback: pd.DataFrame, signals: pd.DataFrame) -> pd.DataFrame:
    """Records nobody has touched (pending everywhere: no submission, discard or draft) that a safe rule can clean,
    with the cleaned texts and provenance "rule" (citation markers removed, whitespace and encoding repaired)."""
    touched = set(feedback.loc[feedback["status"] != ResponseStatus.PENDING, "record_id"].astype(str))
    clean_columns = [f"clean_{field}" for field in RULE_FIXED_FIELDS]
    fixable = signals.loc[signals["fixable"], ["id", *clean_columns]].set_index("id")
    # Each untouched and fixable record's first row, chosen on the ids before any text column is copied:
    # copying the long texts of every untouched row first was most of this function's time.
    record_ids = feedback["record_id"]
    first_rows = ~record_ids.duplicated() & ~ids_in(record_ids, touched) & ids_in(record_ids, fixable.index)
    candidates = feedback.loc[first_rows, ["record_id", "category", *RULE_FIXED_FIELDS]]
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


def curate_with_rule_fixes(
    feedback: pd.DataFrame,
    signals: pd.DataFrame,
    apply_rule_fixes: bool,
    adjudications: pd.DataFrame | None = None,
    policy: ReviewPolicy = ReviewPolicy(),
) -> pd.DataFrame:
    """The curated records; with `apply_rule_fixes`, plus the untouched records a safe rule cleaned."""
    curated = curate(feedback, adjudications, policy)
    if not apply_rule_fixes:
        return curated
    combined = pd.concat([curated, rule_fixed_records(feedback, signals)], ignore_index=True)
    return combined.sort_values("id", key=_id_sort_key).reset_index(drop=True)


def within_source(feedback: pd.DataFrame, source_ids: pd.Series) -> tuple[pd.DataFrame, int]:
    """The feedback rows of records in the declared source, and how many answers lie outside it.

    After a source is replaced, the old source's answered records stay in Argilla with their
    answers (nothing is lost), but they are not part of what this project curates.
    """
    inside = ids_in(feedback["record_id"], source_ids)
    if inside.all():  # the usual case: the same rows without a copy of every text (copy-on-write shares them)
        return feedback.reset_index(drop=True), 0
    outside_answers = int((~inside & (feedback["status"] != ResponseStatus.PENDING)).sum())
    return feedback[inside].reset_index(drop=True), outside_answers


def size_category(records: int) -> str:
    """The Hub's `size_categories` bucket for this many records."""
    return next((label for bound, label in SIZE_CATEGORIES if records < bound), "1B<n<10B")


def _answer_or(answers: pd.Series, fallback) -> pd.Series:
    """The answer where there is one, else the fallback (a column or a constant); text-typed even when every answer is
    missing."""
    # Text-typed first, then filled: filling object values and typing them after made every answer and fallback a
    # Python string for a moment.
    text = answers.astype(str)
    return text.where(text.notna(), fallback)


def _id_sort_key(ids: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(ids, errors="coerce")
    return numeric if numeric.notna().all() else ids


UNTIL_ADJUDICATED_IN_WORDS = {
    HOLD_OUT: "left out until a reviewer adjudicates them",
    MAJORITY: "published as the majority's version (provenance `majority`) until a reviewer adjudicates them",
}


def dataset_card(
    curated: pd.DataFrame,
    statistics_markdown: str,
    *,
    project: str,
    source: str,
    license: str,
    attribution: str,
    until_adjudicated: str = HOLD_OUT,
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
  "adjudicated": annotators disagreed and a reviewer decided (`annotator` names the reviewer);
  "majority": annotators disagreed and the majority's version stands until a review;
  "rule": nobody annotated it, and the automatic pass removed citation markers or repaired whitespace/encoding)
- records several annotators answered but disagreed on are {UNTIL_ADJUDICATED_IN_WORDS[until_adjudicated]}
- columns: {", ".join(CURATED_COLUMNS)}

## Statistics

{statistics_markdown}

## License and attribution

License: `{license}`.

{attribution_section}
"""
