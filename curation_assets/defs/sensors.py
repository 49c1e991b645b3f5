"""Watch Argilla cheaply and keep a project's assets in step with its annotators' work."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import dagster as dg

from ..argilla_adapter.client import ArgillaClient
from ..argilla_adapter.errors import ArgillaUnauthorizedError, ArgillaUnreachableError
from ..logic.activity import POLL_SECONDS, ArgillaActivity, SensorMemory, decide, needs_a_poll
from ..logic.vocabulary import FINISHED_STATUSES
from ..webhooks.marks import WebhookMarks
from .jobs import ProjectJobs
from .project import Project
from .resources import ArgillaResource

# Polling only: each evaluation polls Argilla.
SENSOR_INTERVAL_SECONDS = int(POLL_SECONDS)
# With webhooks: every turn of the daemon's loop (it evaluates sensors at most every 5 s) reads the marks, a
# local file per dataset name; Argilla is polled when a mark moved, or every POLL_SECONDS.
WEBHOOK_SENSOR_INTERVAL_SECONDS = 1
# A refresh "running" for longer than this no longer holds the next one back: a run whose process was killed
# stays STARTED until someone terminates it, and must not stop refreshes for good.
REFRESH_HOLDS_BACK_SECONDS = 15 * 60
# A run that failed (Argilla down mid-push, a crash) is requested again, but not forever.
AUTOMATIC_RETRIES = 3
# How a run ends without finishing its work: asked for again, within AUTOMATIC_RETRIES.
UNFINISHED_ENDS = frozenset({dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED})
NOT_ENDED = (
    dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING,
)  # fmt: skip


def observe_activity(argilla: ArgillaClient, project: Project) -> ArgillaActivity:
    """A few listings plus one aggregate per dataset, annotators' and reviewers': no record is read.

    A declared team is the project's annotators; review datasets count as `review:<reviewer>`.
    """
    team = project.settings.annotation.annotators
    activity = ArgillaActivity(annotators=argilla.annotator_usernames() if team == "all" else list(team))
    watched = {shard: dataset for shard, dataset in argilla.datasets_named(project.dataset_name).items()}
    watched |= {
        f"review:{name}": dataset for name, dataset in argilla.datasets_named(project.review_dataset_name).items()
    }
    for shard, dataset in watched.items():
        progress = argilla.users_progress(dataset.id)
        activity.finished_by_dataset[shard] = {
            str(status): sum(user[status] for user in progress.values()) for status in FINISHED_STATUSES
        }
    return activity


def failures_in_a_row(
    instance: dg.DagsterInstance, job_name: str, partition: str | None = None, since: float | None = None
) -> int:
    """How many of the job's latest runs (for this partition, since then) failed or were canceled, counting back from the
    newest.

    Part of the run key: a failed run is requested again (keys are never reused), while a queued
    or running retry resets the count to 0, whose key was used already. A canceled run counts as
    failed: a run whose process was killed stays "started" (Dagster's default launcher cannot see
    it die) until someone terminates it in the UI, which marks it canceled, and then it is asked again.
    """
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=job_name,
            tags={"dagster/partition": partition} if partition else {},
            created_after=datetime.fromtimestamp(since, tz=UTC) if since else None,
        ),
        limit=AUTOMATIC_RETRIES + 2,
    )
    count = 0
    for run in runs:
        if run.status not in UNFINISHED_ENDS:
            break
        count += 1
    return count


def stale_partitions(
    instance: dg.DagsterInstance, plan_key: dg.AssetKey, pushed_key: dg.AssetKey, partitions: list[str]
) -> tuple[dg.EventLogRecord | None, list[str]]:
    """The latest plan's materialization (assignments, or the review queue), and the partitions pushed before it (or
    never)."""
    plans = instance.fetch_materializations(plan_key, limit=1).records
    if not plans:
        return None, []
    plan = plans[0]
    stale = []
    for partition in partitions:
        pushes = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=pushed_key, asset_partitions=[partition]), limit=1
        ).records
        if not pushes or pushes[0].storage_id < plan.storage_id:
            stale.append(partition)
    return plan, stale


def refresh_is_running(instance: dg.DagsterInstance, job_name: str, now: float) -> bool:
    """A run of the refresh job is queued, starting or running (and not stuck for longer than any refresh takes)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=job_name,
            statuses=list(NOT_ENDED),
            created_after=datetime.fromtimestamp(now - REFRESH_HOLDS_BACK_SECONDS, tz=UTC),
        ),
        limit=1,
    )
    return bool(runs)


def build_activity_sensor(project: Project, jobs: ProjectJobs) -> dg.SensorDefinition:
    partitions = project.annotator_partitions
    marks_dir = project.webhook_marks_dir
    watched_names = (project.dataset_name, project.review_dataset_name)

    @dg.sensor(
        name=f"{project.name}_annotator_activity",
        jobs=jobs.all(),
        minimum_interval_seconds=WEBHOOK_SENSOR_INTERVAL_SECONDS if marks_dir else SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys={project.argilla_resource_key},
    )
    def annotator_activity(context: dg.SensorEvaluationContext):
        """Registers new annotators, re-plans and re-pushes shards, and refreshes feedback → statistics → curated on new
        work."""
        now = time.time()
        # Read before polling: a mark that moves after this is acted on by the next tick, never lost.
        marks = WebhookMarks(marks_dir).read(watched_names) if marks_dir else {}
        if marks_dir:
            why = needs_a_poll(context.cursor, marks, now)
            if why is None:
                return dg.SkipReason("no webhook news since the last poll; polling Argilla every 30 s")
        resource: ArgillaResource = getattr(context.resources, project.argilla_resource_key)
        try:
            with resource.polling_client() as argilla:
                activity = observe_activity(argilla, project)
        except (ArgillaUnreachableError, ArgillaUnauthorizedError) as error:
            # Keep the cursor: the next tick compares against the last state actually seen.
            return dg.SkipReason(str(error))

        known = set(context.instance.get_dynamic_partitions(partitions.name))
        decision = decide(
            activity,
            known,
            context.cursor,
            webhook_marks=marks,
            refresh_running=refresh_is_running(context.instance, jobs.refresh.name, now),
            now=now,
        )
        run_requests = []
        if decision.new_annotators:
            team = ",".join(sorted(known | set(decision.new_annotators)))
            run_requests.append(dg.RunRequest(run_key=f"plan-for:{team}", job_name=jobs.plan.name))
        reviewers = sorted(context.instance.get_dynamic_partitions(project.reviewer_partitions.name))
        for job, plan_asset, pushed_asset, partition_keys in (
            (jobs.push, "annotation_assignments", "annotator_shards", sorted(known)),
            (jobs.push_reviews, "review_queue", "review_shards", reviewers),
        ):
            plan, stale = stale_partitions(
                context.instance, project.asset_key(plan_asset), project.asset_key(pushed_asset), partition_keys
            )
            for partition in stale:
                # One push per plan, partition and failure, however many ticks pass before the run finishes.
                failed = failures_in_a_row(context.instance, job.name, partition, since=plan.timestamp)
                if failed > AUTOMATIC_RETRIES:
                    context.log.warning(
                        f"{job.name} for {partition} failed {failed} times in a row: launch it by hand once fixed"
                    )
                    continue
                run_requests.append(
                    dg.RunRequest(
                        run_key=f"{pushed_asset}:{partition}:{plan.storage_id}:{failed}",
                        job_name=job.name,
                        partition_key=partition,
                    )
                )
        failed_refreshes = failures_in_a_row(context.instance, jobs.refresh.name)
        if decision.refresh or 0 < failed_refreshes <= AUTOMATIC_RETRIES:
            # The cursor moved on when the failed refresh was requested: without this it would wait for new work.
            run_requests.append(
                dg.RunRequest(
                    run_key=f"refresh:{SensorMemory.from_cursor(decision.cursor).refresh_key()}:{failed_refreshes}",
                    job_name=jobs.refresh.name,
                )
            )

        if not run_requests and not decision.new_annotators:
            return dg.SensorResult(skip_reason=decision.reason, cursor=decision.cursor)
        context.log.info(decision.reason)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[partitions.build_add_request(decision.new_annotators)]
            if decision.new_annotators
            else [],
            cursor=decision.cursor,
        )

    return annotator_activity
