"""Every response from every annotator dataset, discards included."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import pandas as pd

from ...argilla_adapter.client import ArgillaClient, ArgillaDataset
from ...argilla_adapter.feedback_cache import FeedbackCache, agrees_with_server, merge_changed
from ...argilla_adapter.mapping import feedback_frame, read_feedback_frame
from ...logic.departed import finished_answers, with_departed_answers
from ...logic.statistics import warm_up_charts
from ...logic.vocabulary import FEEDBACK_COLUMNS, STATUSES
from ..feedback_store import kept_answers_path, read_kept_answers
from ..project import Project
from ..resources import argilla_client
from ..warm_up import start_warm_up


def build_collected_feedback(project: Project) -> dg.AssetsDefinition:
    @dg.asset(
        key=project.asset_key("collected_feedback"),
        deps=[project.asset_key("annotator_shards")],
        group_name=project.group,
        kinds={"argilla", "pandas"},
        required_resource_keys={project.argilla_resource_key},
    )
    def collected_feedback(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
        """One row per record and annotator: submitted, discarded, draft or pending, with the answers and the originals."""
        if _run_selects(context, project.asset_key("change_statistics")):
            # Its chart libraries load while this step waits for Argilla, not in change_statistics (defs/warm_up.py).
            start_warm_up(warm_up_charts, "charts")
        argilla = argilla_client(context, project.argilla_resource_key)
        usernames_by_id = {user_id: name for name, user_id in argilla.user_ids_by_name().items()}
        cache = FeedbackCache(project.output_folder("feedback_cache"), argilla.api_url)
        # Taken before any record is read: the next read asks for what changed from here on.
        read_since = argilla.changes_since_now()
        shards = sorted(argilla.datasets_named(project.dataset_name).items())
        # Two datasets at a time: the server lists one's records while this process turns the other's into rows.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="read-dataset") as readers:
            reads = list(
                readers.map(
                    lambda shard_and_dataset: _read_dataset(
                        argilla, cache, *shard_and_dataset, read_since, usernames_by_id
                    ),
                    shards,
                )
            )
        frames = [read.rows for read in reads]
        records_read = sum(read.records_read for read in reads)
        full_reads = [shard for (shard, _), read in zip(shards, reads) if read.in_full]
        collected = pd.concat(frames, ignore_index=True) if frames else feedback_frame([])
        # Argilla deletes a user's responses with the account: put back what we collected before.
        feedback, put_back = with_departed_answers(
            collected, read_kept_answers(project, FEEDBACK_COLUMNS), set(usernames_by_id.values())
        )
        finished_answers(feedback).to_parquet(kept_answers_path(project), index=False)
        status_counts = feedback["status"].value_counts().to_dict()
        return dg.Output(
            feedback,
            metadata={
                "rows": len(feedback),
                "records": feedback["record_id"].nunique(),
                "annotator_datasets": feedback["shard"].nunique(),
                "records_read": records_read,
                "datasets_read_in_full": dg.MetadataValue.json(full_reads),
                "answers_of_deleted_accounts": put_back,
                **{f"status_{status}": int(status_counts.get(status, 0)) for status in STATUSES},
            },
        )

    return collected_feedback


def _run_selects(context: dg.AssetExecutionContext, key: dg.AssetKey) -> bool:
    """Whether this run also materializes `key`; False when the asset is invoked directly (a test, the processing
    benchmark), where there is no job and so no later step in this process to warm anything up for."""
    try:
        return key in context.job_def.asset_layer.selected_asset_keys
    except dg.DagsterError:  # DagsterInvalidPropertyError: job_def is not set on a directly invoked asset
        return False


@dataclass(frozen=True)
class _DatasetRead:
    rows: pd.DataFrame
    records_read: int
    in_full: bool


def _read_dataset(
    argilla: ArgillaClient,
    cache: FeedbackCache,
    shard: str,
    dataset: ArgillaDataset,
    read_since: str | None,
    usernames_by_id: dict[str, str],
) -> _DatasetRead:
    """One annotator dataset's rows: what changed since the cached read merged into it, or every record read again
    when there is no cache or the merge does not agree with the server's counts."""
    read = None
    cached = cache.load(dataset.id) if read_since else None
    if cached is not None:
        previous, since = cached
        changed, records_read = read_feedback_frame(
            argilla.iter_records_updated_since(dataset.id, since), shard, usernames_by_id
        )
        merged = merge_changed(previous, changed)
        if agrees_with_server(merged, argilla.record_total(dataset.id), argilla.users_progress(dataset.id)):
            read = _DatasetRead(merged, records_read, in_full=False)
    if read is None:
        rows, records_read = read_feedback_frame(argilla.iter_records(dataset.id), shard, usernames_by_id)
        read = _DatasetRead(rows, records_read, in_full=True)
    if read_since:
        cache.save(dataset.id, read.rows, read_since)
    return read
