"""What `curation-quickstart` prints: one line per materialized step with its counts, and errors as their message.

Dagster's own event stream (about 150 DEBUG lines per run) is kept for `--verbose`.
"""

from __future__ import annotations

import logging

import dagster as dg

from ..logic.pace import readable_eta

# Quiet: Dagster prints nothing itself (errors come back as one message, warnings as one line each).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
VERBOSE_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


def _metadata(event) -> dict:
    return {key: value.value for key, value in event.materialization.metadata.items()}


def step_line(asset_name: str, partition: str | None, metadata: dict) -> str:
    """One readable line: which step, and the counts a person checks first."""
    name = f"{asset_name}[{partition}]" if partition else asset_name
    if asset_name == "raw_dolly":
        counts = f"{metadata['rows_valid']} records valid, {metadata['rows_quarantined']} quarantined"
    elif asset_name == "quality_signals":
        counts = f"{metadata['records_flagged']} of {metadata['records']} records flagged"
    elif asset_name == "annotation_assignments":
        counts = (
            f"{metadata['records']} records to {metadata['annotators']} annotators ({_listed(metadata['share_sizes'])})"
        )
        former = metadata.get("answered_records_kept_by_former_annotators") or {}
        if former:
            counts += f"; answered records kept by former annotators: {_listed(former)}"
    elif asset_name == "annotator_shards":
        counts = (
            "nothing changed since the last push"
            if metadata.get("skipped_unchanged_since_last_push")
            else f"{metadata['records_pushed']} pushed, {metadata['records_removed_unanswered']} withdrawn, "
            f"{metadata['records_in_dataset']} in the dataset"
        )
    elif asset_name == "collected_feedback":
        counts = (
            f"{metadata['status_submitted']} submitted, {metadata['status_discarded']} discarded, "
            f"{metadata['status_draft']} drafts, {metadata['status_pending']} pending"
        )
    elif asset_name == "change_statistics":
        counts = f"charts of {metadata['submitted']} submitted records"
    elif asset_name == "annotator_agreement":
        counts = f"{metadata['records_answered_by_several']} records answered by several annotators"
    elif asset_name == "annotator_pace":
        counts = (
            f"{metadata['records_left']} records left, ETA {readable_eta(metadata['eta_hours'])} at the current pace"
        )
    elif asset_name == "review_queue":
        counts = f"{metadata['disagreements']} disagreements{_breakdown(metadata['by_reviewer'])}"
    elif asset_name == "review_shards":
        counts = f"{metadata['reviews_pushed']} pushed, {metadata['reviews_answered']} answered"
    elif asset_name == "collected_reviews":
        counts = f"{metadata['reviews']} reviews{_breakdown(metadata['by_verdict'])}"
    elif asset_name == "curated_dolly":
        counts = f"{metadata['records']} records published{_breakdown(metadata['provenance'])}"
        if metadata.get("answers_outside_source"):
            counts += f"; {metadata['answers_outside_source']} answers to records of a replaced source kept aside"
    else:
        counts = ""
    return f"  {name:<34} {counts}"


# A simulated annotator's actions as the console names them (simulation.choose_action's keys), in this order.
SIMULATED_ACTIONS = {
    "submit_unchanged": "submitted unchanged",
    "submit_edited": "submitted edited",
    "discard": "discarded",
    "draft": "drafts",
    "accepted": "accepted",
    "left out": "left out",
}


def simulated_line(project: str, who: str, actions: dict) -> str:
    """ "dolly_excerpt: simulated ana: submitted unchanged 4, submitted edited 3, discarded 1" (nothing to answer: said)."""
    named = {SIMULATED_ACTIONS.get(action, action): count for action, count in _in_order(actions).items() if count}
    return f"  {project}: simulated {who}: {_listed(named) if named else 'nothing left to answer'}"


def _in_order(actions: dict) -> dict:
    order = list(SIMULATED_ACTIONS)
    return dict(sorted(actions.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def _listed(counts: dict) -> str:
    """ "original 4, human 3" for {"original": 4, "human": 3}."""
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _breakdown(counts: dict) -> str:
    """ " (original 4, human 3)"; nothing for no counts (not "({})")."""
    return f" ({_listed(counts)})" if counts else ""


def run_summary(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> list[str]:
    """A line per materialization of the run (asset name without the project prefix), then the warnings the steps logged.

    A failed run's warnings are Dagster's "not executing" notes about the steps after the failure: its
    failure message says it all.
    """
    lines = []
    for event in result.get_asset_materialization_events():
        key = event.asset_key.path[-1]
        lines.append(step_line(key, event.partition, _metadata(event)))
    if not result.success:
        return lines
    for entry in instance.all_logs(result.run_id):
        if entry.dagster_event is None and entry.level >= logging.WARNING:
            lines.append(f"    warning: {entry.user_message}")
    return lines


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The failed step's message: a `dg.Failure`'s own description, else the error's last line, without tracebacks."""
    messages = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            messages.append(data.user_failure_data.description)
            continue
        error = data.error
        while error.cause is not None and "DagsterExecutionStepExecutionError" in error.cls_name:
            error = error.cause
        # The message starts with the error's class name already.
        messages.append(f"{event.step_key}: {error.message.strip()}")
    return "\n".join(messages) or "the run failed (run again with --verbose to see Dagster's events)"
