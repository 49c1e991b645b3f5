"""Disagreements between annotators, who reviews each, and what the curated dataset takes from a record several answered.

A record two or more annotators finished is a disagreement when one discarded it and another
submitted it, or when two submitted versions are less similar than the threshold in any field
(word-level similarity, as `change_statistics` measures edits). A reviewer adjudicates it in
their own review dataset, starting from the closest version: the one most similar to the others.
Until then the project's declared policy holds: leave the record out, or take the majority.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from dataclasses import dataclass

import pandas as pd

from .agreement import FIELDS, finished_versions, outcomes_agree
from .changes import similarity
from .ids import ids_in
from .vocabulary import ResponseStatus

HOLD_OUT, MAJORITY = "hold_out", "majority"
DISAGREEMENT_COLUMNS = ["record_id", "category", "annotators", "reason", "versions", "closest", "prefill"]
# The reviewer's verdict (a label question in the review dataset), besides the final texts.
ACCEPT, DISCARD = "accept", "discard"


@dataclass(frozen=True)
class Version:
    annotator: str
    status: str
    texts: dict[str, str]  # field short name (instruction, input, response) → final text; empty when discarded


def versions_by_record(feedback: pd.DataFrame) -> dict[str, list[Version]]:
    """The finished versions of every record two or more annotators finished."""
    finished = finished_versions(feedback)
    # One sort and one pass, not a frame per record: by record (in groupby's order), then annotator (unique per record).
    finished = finished[finished["record_id"].notna()].sort_values(["record_id", "annotator"], kind="stable")
    columns = [finished[column].to_numpy(dtype=object) for column in ("record_id", "annotator", "status")]
    texts = [finished[f"final_{field}"].to_numpy(dtype=object) for field in FIELDS]
    versions: dict[str, list[Version]] = {}
    for (record_id, annotator, status), finals in zip(zip(*columns), zip(*texts)):
        version = Version(annotator, status, {field: final or "" for field, final in zip(FIELDS, finals)})
        versions.setdefault(record_id, []).append(version)
    return versions


def closest_version(versions: list[Version]) -> Version | None:
    """The submitted version most similar to the other submitted ones (its fields' mean similarity); None if none was
    submitted."""
    submitted = [version for version in versions if version.status == ResponseStatus.SUBMITTED]
    if not submitted:
        return None

    def closeness(version: Version) -> float:
        others = [other for other in submitted if other is not version]
        if not others:
            return 0.0
        return sum(similarity(version.texts[f], other.texts[f]) for other in others for f in FIELDS) / len(others)

    return max(submitted, key=lambda version: (closeness(version), version.annotator))


def disagreement_reason(versions: list[Version], threshold: float) -> str | None:
    """Why these versions disagree, in words; None when they agree."""
    decisions = Counter(version.status for version in versions)
    if len(decisions) > 1:
        return " vs ".join(f"{count} {status}" for status, count in sorted(decisions.items()))
    as_rows = [{"status": v.status, **{f"final_{f}": v.texts[f] for f in FIELDS}} for v in versions]
    for i, j in itertools.combinations(range(len(versions)), 2):
        if not outcomes_agree(as_rows[i], as_rows[j], threshold):
            fields = [f for f in FIELDS if similarity(versions[i].texts[f], versions[j].texts[f]) < threshold]
            return f"{versions[i].annotator} and {versions[j].annotator} wrote different {', '.join(fields)} (similarity < {threshold})"
    return None


def find_disagreements(feedback: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per record whose finished versions disagree, with the versions, the closest one, and its answers as the
    annotator wrote them (`prefill`: what the review starts from)."""
    versions_of = versions_by_record(feedback)
    # Only the rows of records several annotators finished, in their order: the lookups below give what they gave on
    # the whole feedback (its last category per record, its last submission per annotator), without a Python object
    # made of every row's id, category and answers.
    feedback = feedback[ids_in(feedback["record_id"], list(versions_of))]
    categories = dict(zip(feedback["record_id"], feedback["category"]))
    submitted = feedback[feedback["status"] == ResponseStatus.SUBMITTED].drop_duplicates(
        ["record_id", "annotator"], keep="last"
    )
    answers = submitted.set_index(["record_id", "annotator"])[["new_instruction", "new_input", "new_response"]]
    rows = []
    for record_id, versions in sorted(versions_of.items()):
        reason = disagreement_reason(versions, threshold)
        if reason is not None:
            closest = closest_version(versions)
            rows.append(
                {
                    "record_id": record_id,
                    "category": categories.get(record_id, ""),
                    "annotators": [version.annotator for version in versions],
                    "reason": reason,
                    "versions": [version.__dict__ for version in versions],
                    "closest": closest.annotator if closest else "",
                    "prefill": _answers_of(answers, record_id, closest.annotator) if closest else {},
                }
            )
    return pd.DataFrame(rows, columns=DISAGREEMENT_COLUMNS)


def _answers_of(answers: pd.DataFrame, record_id: str, annotator: str) -> dict:
    row = answers.loc[(record_id, annotator)]
    return {column: ("" if pd.isna(value) else str(value)) for column, value in row.items()}


def majority(versions: list[Version]) -> Version | None:
    """The majority's outcome: the closest submitted version if most submitted; None if most discarded or it is a tie."""
    decisions = Counter(version.status for version in versions)
    submitted, discarded = decisions[ResponseStatus.SUBMITTED], decisions[ResponseStatus.DISCARDED]
    if submitted > discarded:
        return closest_version(versions)
    return None


def assign_reviewers(
    disagreements: pd.DataFrame, reviewers: list[str], seed: int, previous: dict[str, str], answered: set[str]
) -> pd.DataFrame:
    """Record → reviewer: someone who did not answer it where possible, balanced, and stable (a review in progress or
    answered stays with its reviewer)."""
    columns = ["record_id", "reviewer"]
    if disagreements.empty or not reviewers:
        return pd.DataFrame(columns=columns)
    team = sorted(set(reviewers))
    load = Counter()
    placed: dict[str, str] = {}
    ordered = sorted(disagreements.to_dict("records"), key=lambda row: _hash(f"{seed}:review:{row['record_id']}"))
    for row in ordered:
        record_id = row["record_id"]
        holder = previous.get(record_id)
        if holder is not None and (record_id in answered or (holder in team and holder not in row["annotators"])):
            placed[record_id] = holder
            load[holder] += 1
    for row in ordered:
        record_id = row["record_id"]
        if record_id in placed:
            continue
        uninvolved = [reviewer for reviewer in team if reviewer not in row["annotators"]] or team
        chosen = min(uninvolved, key=lambda reviewer: (load[reviewer], _hash(f"{seed}:{record_id}:{reviewer}")))
        placed[record_id] = chosen
        load[chosen] += 1
    return pd.DataFrame(sorted(placed.items()), columns=columns)


def _hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()
