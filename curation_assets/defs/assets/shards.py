"""Each annotator's share, pushed to their own Argilla workspace and dataset."""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandas as pd

from ...argilla_adapter.client import ArgillaClient, ArgillaDataset
from ...argilla_adapter.dataset_settings import (
    QUALITY_METADATA_NAMES,
    curation_dataset_settings,
    quality_metadata_properties,
)
from ...argilla_adapter.mapping import display_upgrades, record_items
from ...logic.ids import ids_in
from ...logic.quality import review_order
from ...logic.shard_sync import plan_shard_sync, shard_fingerprint, spread_through_queue
from ...logic.source_guard import PROJECT_STAMP, SOURCE_STAMP
from ..project import Project
from ..resources import ARGILLA_WRITES_POOL, argilla_client
from .assignments import refuse_a_source_switch

# Shards whose datasets are checked at the same time (each check is three or four small reads and a hash of the share).
UNCHANGED_CHECKS_AT_ONCE = 4


def build_annotator_shards(project: Project) -> dg.AssetsDefinition:
    source_identity = project.source.identity
    stamp = {PROJECT_STAMP: project.name, SOURCE_STAMP: source_identity}
    property_names = list(QUALITY_METADATA_NAMES)

    @dg.asset(
        key=project.asset_key("annotator_shards"),
        ins={
            "raw_dolly": dg.AssetIn(project.asset_key("raw_dolly")),
            "quality_signals": dg.AssetIn(project.asset_key("quality_signals")),
            "annotation_assignments": dg.AssetIn(project.asset_key("annotation_assignments")),
        },
        partitions_def=project.annotator_partitions,
        # Materializing several annotators (all of them, from the UI or the quickstart) is one run: Dagster's
        # cost per run (a process, the inputs loaded, the event log) is paid once. Each partition is
        # still materialized, with its own metadata.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=project.group,
        kinds={"argilla"},
        code_version="4",
        pool=ARGILLA_WRITES_POOL,
        required_resource_keys={project.argilla_resource_key},
    )
    def annotator_shards(
        context: dg.AssetExecutionContext,
        raw_dolly: pd.DataFrame,
        quality_signals: pd.DataFrame,
        annotation_assignments: pd.DataFrame,
    ) -> dg.MaterializeResult:
        """Each annotator's records in their own Argilla workspace, flagged ones first: created if missing, upserted by
        id, answered records never touched."""
        argilla = argilla_client(context, project.argilla_resource_key)
        annotators = list(context.partition_keys)
        existing_datasets = argilla.datasets_named(project.dataset_name)
        # The plan checked this too; a push launched on its own (from the UI) must not mix sources either.
        refuse_a_source_switch(
            project, {name: existing_datasets[name] for name in annotators if name in existing_datasets}
        )
        shares = {
            annotator: _share(annotator, raw_dolly, quality_signals, annotation_assignments) for annotator in annotators
        }
        last_pushes = {annotator: _last_push_metadata(context, annotator) for annotator in annotators}
        # Shards checked several at a time: one's reads of its dataset wait on the server while another's fingerprint is
        # hashed (the no-change push of four shards: about 0.06 s less). The threads share the REST client that
        # datasets_named, above, made: it must exist before they start (it is made on first use).
        candidates = [annotator for annotator in annotators if annotator in existing_datasets]
        with ThreadPoolExecutor(max_workers=UNCHANGED_CHECKS_AT_ONCE, thread_name_prefix="check-unchanged") as checkers:
            verdicts = list(
                checkers.map(
                    lambda annotator: _unchanged_since(
                        last_pushes[annotator],
                        argilla,
                        existing_datasets[annotator],
                        *shares[annotator][:2],
                        property_names,
                    ),
                    candidates,
                )
            )
        unchanged = {annotator for annotator, same in zip(candidates, verdicts) if same}
        # The next annotator's dataset is prepared (created with its settings, its records read, the sync planned)
        # while this one's records are written: creating a dataset is dozens of small requests, which the server
        # fits between the batches' SQLite writes.
        with closing(
            _prepared_one_ahead(
                [annotator for annotator in annotators if annotator not in unchanged],
                lambda annotator: _prepare_dataset(argilla, annotator, *shares[annotator][:2]),
            )
        ) as prepared:
            for annotator in annotators:
                planned, signals, overlap_ids = shares[annotator]
                if annotator in unchanged:
                    # Same plan, same source text and signals, same dataset holding as many records as we left: nothing
                    # to read or push. Checked before any SDK lookup: a re-push of an unchanged plan costs a few reads.
                    metadata = _skipped_push(
                        argilla, existing_datasets[annotator], last_pushes[annotator], len(planned)
                    )
                else:
                    metadata = _push_shard(context, argilla, annotator, planned, signals, overlap_ids, next(prepared))
                context.add_asset_metadata(metadata, partition_key=annotator)
                context.log.info(
                    f"{annotator}: {metadata['records_pushed']} record(s) pushed, {metadata['records_unchanged']} unchanged"
                )
        return dg.MaterializeResult()

    def _skipped_push(argilla: ArgillaClient, dataset: ArgillaDataset, last_push: dict, planned: int) -> dict:
        if any(dataset.metadata.get(key) != value for key, value in stamp.items()):
            argilla.stamp_dataset(dataset, stamp)
        return {**last_push, "records_pushed": 0, "records_pushed_flagged": 0,
                "records_unchanged": planned, "records_removed_unanswered": 0,
                "metadata_properties_added": dg.MetadataValue.json([]), "skipped_unchanged_since_last_push": True,
                "argilla_dataset": _dataset_url(argilla, dataset)}  # fmt: skip

    def _prepare_dataset(
        argilla: ArgillaClient, annotator: str, planned: pd.DataFrame, signals: pd.DataFrame
    ) -> _PreparedDataset:
        dataset = argilla.ensure_annotator_dataset(
            annotator, project.dataset_name, curation_dataset_settings, metadata=stamp
        )
        argilla.allow_extra_metadata(dataset)
        added_properties = argilla.ensure_metadata_properties(dataset, quality_metadata_properties())
        sync = plan_shard_sync(planned, list(argilla.iter_records(dataset.id)), signals)
        return _PreparedDataset(dataset, added_properties, sync)

    def _push_shard(
        context: dg.AssetExecutionContext,
        argilla: ArgillaClient,
        annotator: str,
        planned: pd.DataFrame,
        signals: pd.DataFrame,
        overlap_ids: set[str],
        prepared: _PreparedDataset,
    ) -> dict:
        dataset, added_properties, sync = prepared.dataset, prepared.added_properties, prepared.sync
        # The annotation queue lists records in insertion order, so logging the highest priority first
        # puts flagged records at the top of a new queue; the `priority` metadata sorts any queue in the UI.
        to_push = spread_through_queue(
            review_order(sync["push"], signals), overlap_ids, dict(zip(signals["id"], signals["priority"]))
        )
        if len(to_push):
            argilla.upsert_record_items(
                dataset, record_items(to_push, signals, argilla.field_names(dataset), argilla.question_ids(dataset))
            )
        # Answered records pushed before fields held display copies: rewritten with escaped copies of their own text.
        argilla.upsert_records(dataset, display_upgrades(sync["display_upgrades"]))
        argilla.delete_records(dataset.id, sync["remove_record_uuids"])
        # Only now that every record holds display copies: a plain text field shows a raw one as live HTML.
        switched = argilla.show_fields_as_plain_text(dataset)
        if switched or sync["display_upgrades"]:
            context.log.warning(
                f"{annotator}'s dataset showed record text as live HTML (fields {switched} were markdown; "
                f"{len(sync['display_upgrades'])} answered record(s) held raw text): its fields are now plain text "
                "holding escaped display copies; answers and the text the pipeline reads are unchanged"
            )
        # Stamped after the push: a dataset still carries the old source until its records are the new one's.
        argilla.stamp_dataset(dataset, stamp)
        if sync["held_answered_ids"]:
            context.log.warning(
                f"{len(sync['held_answered_ids'])} answered record(s) of {annotator}'s changed at the source and were "
                f"left as annotated: {sync['held_answered_ids'][:20]}"
            )
        return {
            "annotator": annotator,
            "source": source_identity,
            "records_planned": len(planned),
            "records_pushed": len(sync["push"]),
            "records_pushed_flagged": int(
                to_push["id"].astype(str).map(signals.set_index("id")["priority"]).gt(0).sum()
            ),
            "records_unchanged": sync["unchanged"],
            "records_removed_unanswered": len(sync["remove_record_uuids"]),
            "answered_records_kept_outside_plan": len(sync["answered_outside_plan"]),
            "answered_records_left_as_annotated": len(sync["held_answered_ids"]),
            "answered_records_given_display_copies": len(sync["display_upgrades"]),
            "metadata_properties_added": dg.MetadataValue.json(added_properties),
            "argilla_dataset": _dataset_url(argilla, dataset),
            "shard_fingerprint": shard_fingerprint(planned, dataset.id, signals),
            "records_in_dataset": argilla.record_total(dataset.id),
            "skipped_unchanged_since_last_push": False,
        }

    return annotator_shards


def _prepared_one_ahead(keys: list[str], prepare: Callable[[str], Any]) -> Iterator[Any]:
    """prepare(key) for each key in order, each next key prepared in a background thread while the caller uses this one.

    One at a time, and a key only once the one before it was prepared: a failure surfaces where a
    sequential loop would have raised it, having prepared nothing beyond it.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-next") as preparer:
        upcoming = preparer.submit(prepare, keys[0]) if keys else None
        for position in range(len(keys)):
            ready = upcoming.result()
            upcoming = preparer.submit(prepare, keys[position + 1]) if position + 1 < len(keys) else None
            yield ready


@dataclass(frozen=True)
class _PreparedDataset:
    """An annotator's dataset ready for the push: created or found, its settings current, its sync planned."""

    dataset: ArgillaDataset
    added_properties: list[str]
    sync: dict


def _share(
    annotator: str, raw_dolly: pd.DataFrame, quality_signals: pd.DataFrame, annotation_assignments: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    """The annotator's planned records, their quality signals, and the ids they share with others (overlap)."""
    mine = annotation_assignments[annotation_assignments["annotator"] == annotator]
    planned = raw_dolly[ids_in(raw_dolly["id"], mine["id"])]
    signals = quality_signals[ids_in(quality_signals["id"], mine["id"])]
    return planned, signals, set(mine.loc[mine["overlap"], "id"])


def _unchanged_since(
    last_push: dict,
    argilla: ArgillaClient,
    dataset: ArgillaDataset,
    planned: pd.DataFrame,
    signals: pd.DataFrame,
    property_names: list[str],
) -> bool:
    """Whether the last push left this dataset as the plan wants it now, and it still holds what that push left."""
    return (
        bool(last_push)
        and dataset.status == "ready"
        and last_push.get("shard_fingerprint") == shard_fingerprint(planned, dataset.id, signals)
        and last_push.get("records_in_dataset") == argilla.record_total(dataset.id)
        and argilla.settings_as_pushed(dataset, property_names)
    )


def _dataset_url(argilla: ArgillaClient, dataset: ArgillaDataset) -> dg.MetadataValue:
    return dg.MetadataValue.url(f"{argilla.api_url.rstrip('/')}/dataset/{dataset.id}/annotation-mode")


def _last_push_metadata(context: dg.AssetExecutionContext, annotator: str) -> dict:
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=context.asset_key, asset_partitions=[annotator]), limit=1
    ).records
    if not records:
        return {}
    return {key: value.value for key, value in records[0].asset_materialization.metadata.items()}
