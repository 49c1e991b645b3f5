"""How much annotators agree on the records two or more of them answered.

Three things are compared, each on the records the annotators share:
- the decision: submit or discard;
- per field, whether they changed it or kept it (only where both submitted);
- the final texts, by the word-level similarity `change_statistics` uses (only where both submitted).

Two raters: Cohen's kappa with a bootstrap interval, and the raw agreement with a Wilson
interval (kappa is undefined when both raters always chose the same). More than two raters per
record, or raters who answered different records: Krippendorff's alpha (nominal), which takes
any number of raters per record and missing answers. Intervals are 95%; with a handful of shared
records they are wide, and the tables say how many records each figure rests on.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .changes import COMPARED, normalise, similarity
from .ids import key_rows
from .vocabulary import FINISHED_STATUSES, ResponseStatus

Z_95 = 1.959963984540054
BOOTSTRAP_SAMPLES = 1000
# An annotator's agreement is judged only on this many shared records or more.
MIN_SHARED_RECORDS = 5
FIELDS = [name for *_, name in COMPARED]


def wilson_interval(agreeing: int, total: int, z: float = Z_95) -> tuple[float, float] | tuple[None, None]:
    """The Wilson score interval of a proportion: honest near 0, 1 and for small counts, unlike p ± z·se."""
    if total == 0:
        return None, None
    p = agreeing / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(left: list, right: list) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None when chance agreement is total (always one label)."""
    total = len(left)
    if total == 0:
        return None
    observed = sum(a == b for a, b in zip(left, right)) / total
    left_counts, right_counts = Counter(left), Counter(right)
    expected = sum(left_counts[label] * right_counts[label] for label in left_counts) / (total * total)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def kappa_interval(left: list, right: list, seed: int = 0) -> tuple[float | None, float | None]:
    """A 95% percentile bootstrap interval of Cohen's kappa, resampling the items; None where kappa is undefined."""
    if len(left) < 2:
        return None, None
    labels = sorted(set(left) | set(right), key=str)
    code = {label: index for index, label in enumerate(labels)}
    a = np.array([code[label] for label in left])
    b = np.array([code[label] for label in right])
    size, kinds = len(a), len(labels)
    samples = np.random.default_rng(seed).integers(0, size, (BOOTSTRAP_SAMPLES, size))
    sampled_a, sampled_b = a[samples], b[samples]
    observed = (sampled_a == sampled_b).mean(axis=1)
    counts_a = np.stack([(sampled_a == k).sum(axis=1) for k in range(kinds)], axis=1)
    counts_b = np.stack([(sampled_b == k).sum(axis=1) for k in range(kinds)], axis=1)
    expected = (counts_a * counts_b).sum(axis=1) / (size * size)
    defined = expected < 1.0
    if defined.sum() < BOOTSTRAP_SAMPLES // 2:
        return None, None
    kappas = (observed[defined] - expected[defined]) / (1 - expected[defined])
    return float(np.percentile(kappas, 2.5)), float(np.percentile(kappas, 97.5))


def krippendorff_alpha(units: list[list]) -> float | None:
    """Krippendorff's alpha for nominal labels; each unit lists the labels its raters gave (units with one label are
    skipped)."""
    coincidences: dict[tuple, float] = defaultdict(float)
    for labels in units:
        if len(labels) < 2:
            continue
        for i, j in ((i, j) for i in range(len(labels)) for j in range(len(labels)) if i != j):
            coincidences[(labels[i], labels[j])] += 1 / (len(labels) - 1)
    totals: dict = defaultdict(float)
    for (label, _), weight in coincidences.items():
        totals[label] += weight
    n = sum(totals.values())
    if n <= 1:
        return None
    disagreeing = sum(weight for (a, b), weight in coincidences.items() if a != b)
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b)
    if expected == 0:
        return None
    return 1 - (n - 1) * disagreeing / expected


@dataclass
class AgreementTables:
    """What the asset publishes: per annotator pair, per annotator against the others, and overall."""

    pairs: pd.DataFrame
    annotators: pd.DataFrame
    overall: pd.DataFrame
    records: int  # records answered (submitted or discarded) by two or more annotators

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "agreement_pairs": self.pairs,
            "agreement_by_annotator": self.annotators,
            "agreement_overall": self.overall,
        }


PAIR_COLUMNS = [
    "annotator_a", "annotator_b", "shared_records", "decision_agreement", "decision_agreement_low", "decision_agreement_high",
    "decision_kappa", "decision_kappa_low", "decision_kappa_high", "both_submitted",
    *[f"{field}_changed_kappa" for field in FIELDS], *[f"{field}_similarity" for field in FIELDS], "outcome_agreement",
]  # fmt: skip
ANNOTATOR_COLUMNS = [
    "annotator", "shared_records", "decision_agreement", "decision_kappa", "outcome_agreement",
    "outcome_agreement_low", "outcome_agreement_high", *[f"{field}_similarity" for field in FIELDS], "outlier",
]  # fmt: skip


def finished_versions(feedback: pd.DataFrame) -> pd.DataFrame:
    """For records two or more annotators finished (submitted or discarded): each one's answer, with `changed_<field>`
    and the normalised final texts. Records only one annotator finished, the usual case, are left out early."""
    status = feedback["status"]
    is_finished = np.zeros(len(feedback), dtype=bool)
    for finished_status in FINISHED_STATUSES:  # `==` is Arrow's; `isin` on Arrow strings goes value by value
        is_finished |= status.eq(str(finished_status)).to_numpy(dtype=bool, na_value=False)
    # Which rows, chosen on the key columns alone (labelled by position), then those rows taken once: the same rows in
    # the same order as sorting and deduplicating the finished rows with every text, without copying those texts.
    keys = key_rows(feedback, is_finished, ["record_id", "annotator", "updated_at"])
    keys = keys.sort_values("updated_at").drop_duplicates(["record_id", "annotator"], keep="last")
    keys = keys[keys["record_id"].map(keys["record_id"].value_counts()) > 1]
    finished = feedback.iloc[keys.index.to_numpy()].copy()
    submitted = finished["status"] == ResponseStatus.SUBMITTED
    for field, column, name in COMPARED:
        final = finished[column].map(normalise)
        finished[f"final_{name}"] = final.where(submitted, None)
        finished[f"changed_{name}"] = (final != finished[field].map(normalise)).where(submitted, None)
    return finished.reset_index(drop=True)


def outcomes_agree(a: dict, b: dict, threshold: float) -> bool:
    """Same decision, and when both submitted, final texts at least `threshold` similar in every field."""
    if a["status"] != b["status"]:
        return False
    if a["status"] != ResponseStatus.SUBMITTED:
        return True
    return all(similarity(a[f"final_{field}"], b[f"final_{field}"]) >= threshold for field in FIELDS)


def compute_agreement(feedback: pd.DataFrame, threshold: float = 0.8, seed: int = 0) -> AgreementTables:
    """The agreement tables over every record two or more annotators finished (see the module's docstring)."""
    versions = finished_versions(feedback)
    by_record = _answers_by_record(versions)
    pair_items: dict[tuple[str, str], list[tuple[dict, dict]]] = defaultdict(list)
    for answers in by_record.values():
        for a, b in combinations(sorted(answers, key=lambda answer: answer["annotator"]), 2):
            pair_items[(a["annotator"], b["annotator"])].append((a, b))

    pair_rows = [
        _pair_row(a_name, b_name, items, threshold, seed) for (a_name, b_name), items in sorted(pair_items.items())
    ]
    pairs = pd.DataFrame(pair_rows, columns=PAIR_COLUMNS)
    annotators = _by_annotator(pair_items, threshold)
    units = {"decision": [[answer["status"] for answer in answers] for answers in by_record.values()]}
    for field in FIELDS:
        units[f"{field} changed"] = [
            [answer[f"changed_{field}"] for answer in answers if answer["status"] == ResponseStatus.SUBMITTED]
            for answers in by_record.values()
        ]
    overall = pd.DataFrame(
        [{"measure": measure, "krippendorff_alpha": _rounded(krippendorff_alpha(unit_labels)),
          "records": sum(1 for labels in unit_labels if len(labels) > 1)}
         for measure, unit_labels in units.items()]
    )  # fmt: skip
    return AgreementTables(pairs=pairs, annotators=annotators, overall=overall, records=len(by_record))


def _answers_by_record(versions: pd.DataFrame) -> dict[str, list[dict]]:
    """Record id → its rows as dicts, for records with two rows or more: what `{id: group.to_dict("records") for id,
    group in versions.groupby("record_id")}` gives (groups in groupby's order, rows in frame order), with one
    `to_dict` of the whole frame instead of a frame per record (most of compute_agreement's time at 200,000)."""
    # A missing id has no group (groupby drops it): numbered -1 here.
    group_numbers = versions.groupby("record_id").ngroup().fillna(-1).to_numpy(dtype=np.int64)
    rows = versions.to_dict("records")
    groups: list[list[dict]] = [[] for _ in range(int(group_numbers.max()) + 1 if len(group_numbers) else 0)]
    for number, row in zip(group_numbers, rows):
        if number >= 0:
            groups[number].append(row)
    return {answers[0]["record_id"]: answers for answers in groups if len(answers) > 1}


def _pair_row(a_name: str, b_name: str, items: list[tuple[dict, dict]], threshold: float, seed: int) -> dict:
    decisions_a = [a["status"] for a, _ in items]
    decisions_b = [b["status"] for _, b in items]
    agreeing = sum(x == y for x, y in zip(decisions_a, decisions_b))
    low, high = wilson_interval(agreeing, len(items))
    kappa_low, kappa_high = kappa_interval(decisions_a, decisions_b, seed)
    both = [(a, b) for a, b in items if a["status"] == b["status"] == ResponseStatus.SUBMITTED]
    row = {
        "annotator_a": a_name,
        "annotator_b": b_name,
        "shared_records": len(items),
        "decision_agreement": _rounded(agreeing / len(items)),
        "decision_agreement_low": _rounded(low),
        "decision_agreement_high": _rounded(high),
        "decision_kappa": _rounded(cohen_kappa(decisions_a, decisions_b)),
        "decision_kappa_low": _rounded(kappa_low),
        "decision_kappa_high": _rounded(kappa_high),
        "both_submitted": len(both),
        "outcome_agreement": _rounded(sum(outcomes_agree(a, b, threshold) for a, b in items) / len(items)),
    }
    for field in FIELDS:
        row[f"{field}_changed_kappa"] = _rounded(
            cohen_kappa([a[f"changed_{field}"] for a, _ in both], [b[f"changed_{field}"] for _, b in both])
        )
        similarities = [similarity(a[f"final_{field}"], b[f"final_{field}"]) for a, b in both]
        row[f"{field}_similarity"] = _rounded(sum(similarities) / len(similarities)) if similarities else None
    return row


def _by_annotator(pair_items: dict[tuple[str, str], list[tuple[dict, dict]]], threshold: float) -> pd.DataFrame:
    """Each annotator against the others: every shared record with every other annotator, pooled."""
    pooled: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for (a_name, b_name), items in pair_items.items():
        pooled[a_name] += items
        pooled[b_name] += [(b, a) for a, b in items]
    rows = []
    for annotator, items in sorted(pooled.items()):
        mine, theirs = [a["status"] for a, _ in items], [b["status"] for _, b in items]
        agreeing = sum(outcomes_agree(a, b, threshold) for a, b in items)
        low, high = wilson_interval(agreeing, len(items))
        both = [(a, b) for a, b in items if a["status"] == b["status"] == ResponseStatus.SUBMITTED]
        row = {
            "annotator": annotator,
            "shared_records": len(items),
            "decision_agreement": _rounded(sum(x == y for x, y in zip(mine, theirs)) / len(items)),
            "decision_kappa": _rounded(cohen_kappa(mine, theirs)),
            "outcome_agreement": _rounded(agreeing / len(items)),
            "outcome_agreement_low": _rounded(low),
            "outcome_agreement_high": _rounded(high),
        }
        for field in FIELDS:
            similarities = [similarity(a[f"final_{field}"], b[f"final_{field}"]) for a, b in both]
            row[f"{field}_similarity"] = _rounded(sum(similarities) / len(similarities)) if similarities else None
        rows.append(row)
    table = pd.DataFrame(rows, columns=ANNOTATOR_COLUMNS)
    table["outlier"] = outliers(table)
    return table


def outliers(table: pd.DataFrame) -> list[bool]:
    """An annotator agrees less than the others beyond doubt: on enough shared records, the top of their interval
    of outcome agreement lies below the median agreement of the other annotators."""
    flags = []
    for index, row in table.iterrows():
        others = table.drop(index)
        others = others[others["shared_records"] >= MIN_SHARED_RECORDS]
        if row["shared_records"] < MIN_SHARED_RECORDS or others.empty:
            flags.append(False)
            continue
        flags.append(bool(row["outcome_agreement_high"] < float(others["outcome_agreement"].median())))
    return flags


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)
