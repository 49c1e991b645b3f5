"""Watch Argilla cheaply and keep the assets in step with the annotators' work."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

import dagster as dg

from .annotation_settings import DATASET_NAME
from .assets.partitions import annotator_partitions
from .jobs import assignment_job, refresh_job, shard_job
from .resources import ArgillaResource, ArgillaUnavailableError

SENSOR_INTERVAL_SECONDS = 30
# A run that failed (Argilla down mid-push, a crash) is requested again, but not forever.
AUTOMATIC_RETRIES = 3


@dataclass
class ArgillaActivity:
    """What one poll saw: the annotators, and per annotator dataset the counts of finished responses."""

    annotators: list[str]
    finished_by_dataset: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SensorDecision:
    new_annotators: list[str]
    refresh: bool
    cursor: str
    reason: str


def observe_activity(argilla: ArgillaResource) -> ArgillaActivity:
    """Two listings plus one aggregate per dataset: no record is read."""
    activity = ArgillaActivity(annotators=argilla.annotator_usernames())
    for shard, dataset in argilla.datasets_named(DATASET_NAME).items():
        progress = argilla.users_progress(dataset["id"])
        activity.finished_by_dataset[shard] = {
            status: sum(user[status] for user in progress.values()) for status in ("submitted", "discarded")
        }
    return activity


def decide(activity: ArgillaActivity, known_partitions: set[str], cursor: str | None) -> SensorDecision:
    """Pure: compare this poll with the last one recorded in the cursor."""
    previous = json.loads(cursor) if cursor else {}
    new_annotators = sorted(set(activity.annotators) - known_partitions)
    changed = sorted(
        shard
        for shard, counts in activity.finished_by_dataset.items()
        if previous.get(shard) != counts
    )
    reason = []
    if new_annotators:
        reason.append(f"new annotators: {', '.join(new_annotators)}")
    if changed:
        reason.append(f"new submissions or discards in: {', '.join(changed)}")
    return SensorDecision(
        new_annotators=new_annotators,
        refresh=bool(changed),
        cursor=json.dumps(activity.finished_by_dataset, sort_keys=True),
        reason="; ".join(reason) or "no new annotators, submissions or discards",
    )


def failures_in_a_row(instance: dg.DagsterInstance, job_name: str, partition: str | None = None, since: float | None = None) -> int:
    """How many of the job's latest runs (for this partition, since then) failed, counting back from the newest.

    Part of the run key: a failed run is requested again (keys are never reused), while a queued
    or running retry resets the count to 0, whose key was used already.
    """
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=job_name,
            tags={"dagster/partition": partition} if partition else {},
            created_after=datetime.fromtimestamp(since, tz=timezone.utc) if since else None,
        ),
        limit=AUTOMATIC_RETRIES + 2,
    )
    count = 0
    for run in runs:
        if run.status != dg.DagsterRunStatus.FAILURE:
            break
        count += 1
    return count


def stale_shard_partitions(instance: dg.DagsterInstance, partitions: list[str]) -> tuple[dg.EventLogRecord | None, list[str]]:
    """The latest assignment plan's materialization, and the annotators whose shard was pushed before it (or never)."""
    plans = instance.fetch_materializations(dg.AssetKey("annotation_assignments"), limit=1).records
    if not plans:
        return None, []
    plan = plans[0]
    stale = []
    for partition in partitions:
        pushes = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("annotator_shards"), asset_partitions=[partition]), limit=1
        ).records
        if not pushes or pushes[0].storage_id < plan.storage_id:
            stale.append(partition)
    return plan, stale


@dg.sensor(
    jobs=[assignment_job, shard_job, refresh_job],
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def annotator_activity_sensor(context: dg.SensorEvaluationContext, argilla: ArgillaResource):
    """Registers new annotators, re-plans and re-pushes shards, and refreshes feedback → statistics → curated on new work."""
    try:
        activity = observe_activity(argilla.for_polling())
    except ArgillaUnavailableError as error:
        # Keep the cursor: the next tick compares against the last state actually seen.
        return dg.SkipReason(str(error))

    known = set(context.instance.get_dynamic_partitions(annotator_partitions.name))
    decision = decide(activity, known, context.cursor)
    run_requests = []
    if decision.new_annotators:
        run_requests.append(
            dg.RunRequest(run_key=f"plan-for:{','.join(sorted(known | set(decision.new_annotators)))}", job_name=assignment_job.name)
        )
    plan, stale = stale_shard_partitions(context.instance, sorted(known))
    for partition in stale:
        # One push per plan, annotator and failure, however many ticks pass before the run finishes.
        failed = failures_in_a_row(context.instance, shard_job.name, partition, since=plan.timestamp)
        if failed > AUTOMATIC_RETRIES:
            context.log.warning(f"the push of {partition}'s shard failed {failed} times in a row: launch it by hand once fixed")
            continue
        run_requests.append(
            dg.RunRequest(run_key=f"shard:{partition}:{plan.storage_id}:{failed}", job_name=shard_job.name, partition_key=partition)
        )
    failed_refreshes = failures_in_a_row(context.instance, refresh_job.name)
    if decision.refresh or 0 < failed_refreshes <= AUTOMATIC_RETRIES:
        # The cursor moved on when the failed refresh was requested: without this it would wait for new work.
        run_requests.append(dg.RunRequest(run_key=f"refresh:{decision.cursor}:{failed_refreshes}", job_name=refresh_job.name))

    if not run_requests and not decision.new_annotators:
        return dg.SensorResult(skip_reason=decision.reason, cursor=decision.cursor)
    context.log.info(decision.reason)
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [annotator_partitions.build_add_request(decision.new_annotators)] if decision.new_annotators else []
        ),
        cursor=decision.cursor,
    )
