"""How fast each annotator works, how much is left, and when it will be done at this pace.

Argilla keeps no time-on-record, so the pace comes from the time between an annotator's
consecutive answers (each answer's `updated_at`). A gap longer than the pause cut-off is a break,
not work, and is left out. The default cut-off is 10 minutes: a Dolly record takes one to three
minutes to read and fix, so a gap over ten minutes is time away from the queue; counting it would
make a careful annotator who took lunch look slow. The first answer of each session has no
gap before it and counts as one answer with no time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .vocabulary import ANSWER_STATUSES, ResponseStatus

DEFAULT_PAUSE_MINUTES = 10.0
PACE_COLUMNS = [
    "annotator", "answers", "active_minutes", "answers_per_hour", "median_seconds_per_record",
    "records_left", "eta_hours", "edit_rate", "discard_rate", "outcome_agreement",
]  # fmt: skip


@dataclass
class PaceTables:
    pace: pd.DataFrame  # per annotator: PACE_COLUMNS
    progress: pd.DataFrame  # one row: answered, left, team answers per hour, ETA
    timeline: pd.DataFrame  # annotator, hour (start, UTC), answers

    def tables(self) -> dict[str, pd.DataFrame]:
        return {"pace": self.pace, "progress": self.progress, "pace_timeline": self.timeline}


def answer_gaps(feedback: pd.DataFrame) -> pd.DataFrame:
    """Every answer (submitted, discarded or draft) with the seconds since the same annotator's previous answer."""
    answers = feedback[feedback["status"].isin([str(status) for status in ANSWER_STATUSES])][
        ["annotator", "updated_at"]
    ]
    # Answers put back for a deleted account come from a file: make sure every timestamp is one.
    answers = answers.assign(updated_at=pd.to_datetime(answers["updated_at"], utc=True, format="ISO8601"))
    answers = answers.dropna().sort_values(["annotator", "updated_at"])
    answers["gap_seconds"] = answers.groupby("annotator")["updated_at"].diff().dt.total_seconds()
    return answers.reset_index(drop=True)


def compute_pace(
    feedback: pd.DataFrame,
    pause_minutes: float = DEFAULT_PAUSE_MINUTES,
    by_annotator: pd.DataFrame | None = None,
    agreement: pd.DataFrame | None = None,
) -> PaceTables:
    """Pace per annotator, next to their edit and discard rates (`by_annotator` of the change statistics) and their
    agreement with the others (`agreement_by_annotator`), so a lead can tell careful from hasty."""
    gaps = answer_gaps(feedback)
    working = gaps[gaps["gap_seconds"] <= pause_minutes * 60]
    left = feedback[feedback["status"].isin([ResponseStatus.PENDING, ResponseStatus.DRAFT])].groupby("shard").size()
    annotators = sorted(set(gaps["annotator"]) | set(left.index))
    rows = []
    for annotator in annotators:
        theirs = working[working["annotator"] == annotator]["gap_seconds"]
        answers = int((gaps["annotator"] == annotator).sum())
        active_seconds = float(theirs.sum())
        median = float(theirs.median()) if len(theirs) else None
        records_left = int(left.get(annotator, 0))
        rows.append(
            {
                "annotator": annotator,
                "answers": answers,
                "active_minutes": round(active_seconds / 60, 1),
                "answers_per_hour": round(len(theirs) * 3600 / active_seconds, 1) if active_seconds else None,
                "median_seconds_per_record": round(median, 1) if median is not None else None,
                "records_left": records_left,
                "eta_hours": round(records_left * median / 3600, 2) if median else None,
            }
        )
    pace = pd.DataFrame(rows, columns=PACE_COLUMNS[:7])
    pace = _with_quality(pace, by_annotator, agreement)
    timeline = gaps.assign(hour=gaps["updated_at"].dt.floor("h")).groupby(["annotator", "hour"]).size()
    timeline = timeline.rename("answers").reset_index()
    return PaceTables(pace=pace, progress=_progress(pace, feedback), timeline=timeline)


def _with_quality(
    pace: pd.DataFrame, by_annotator: pd.DataFrame | None, agreement: pd.DataFrame | None
) -> pd.DataFrame:
    pace = pace.copy()
    pace["edit_rate"] = pace["discard_rate"] = pace["outcome_agreement"] = None
    if by_annotator is not None and len(by_annotator):
        stats = by_annotator.set_index("annotator")
        finished = stats.get(ResponseStatus.SUBMITTED, 0) + stats.get(ResponseStatus.DISCARDED, 0)
        pace["edit_rate"] = pace["annotator"].map(stats["submitted_changed_share"])
        pace["discard_rate"] = pace["annotator"].map(
            (stats.get(ResponseStatus.DISCARDED, 0) / finished.where(finished > 0)).round(3)
        )
    if agreement is not None and len(agreement):
        pace["outcome_agreement"] = pace["annotator"].map(agreement.set_index("annotator")["outcome_agreement"])
    return pace[PACE_COLUMNS]


def _progress(pace: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """The team's view: records answered and left, the team's rate, and the time left if everyone keeps their pace.

    Annotators work side by side, so the team is done when the slowest queue is: the ETA is the
    largest of the annotators' ETAs, not their sum.
    """
    answered = int(feedback["status"].isin([ResponseStatus.SUBMITTED, ResponseStatus.DISCARDED]).sum())
    rates = pace["answers_per_hour"].dropna()
    etas = pace["eta_hours"].dropna()
    return pd.DataFrame(
        [
            {
                "answers": answered,
                "records_left": int(pace["records_left"].sum()),
                "team_answers_per_hour": round(float(rates.sum()), 1) if len(rates) else None,
                "eta_hours": round(float(etas.max()), 2) if len(etas) else None,
            }
        ]
    )


def readable_eta(hours: float | None) -> str:
    """An ETA as a lead reads it: minutes under an hour, hours after; unknown until someone has a pace."""
    if hours is None or hours != hours:  # NaN: no annotator has two answers yet
        return "unknown until someone has answered twice"
    if hours * 60 < 1:
        return "under a minute"
    if hours < 1:
        return f"about {round(hours * 60)} min"
    return f"about {hours:.1f} h"
