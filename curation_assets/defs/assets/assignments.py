"""Who annotates what: every valid record exactly once, balanced, stable as the team changes."""

import dagster as dg
import pandas as pd

from ...argilla_adapter.client import ArgillaClient, ArgillaDataset
from ...logic.assignment import plan_team_assignments
from ...logic.departed import records_held_by_departed
from ...logic.source_guard import SOURCE_STAMP, source_switch
from ...logic.vocabulary import FEEDBACK_COLUMNS
from ..feedback_store import read_kept_answers
from ..project import Project
from ..resources import argilla_client


def current_placement(
    argilla: ArgillaClient, datasets: dict[str, ArgillaDataset]
) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """Which annotators' datasets hold each record now, and the (record, annotator) pairs with a response."""
    placements: dict[str, set[str]] = {}
    answered = set()
    for annotator, dataset in datasets.items():
        for record in argilla.iter_records(dataset.id):
            placements.setdefault(record["external_id"], set()).add(annotator)
            if record.get("responses"):
                answered.add((record["external_id"], annotator))
    return placements, answered


def refuse_a_source_switch(project: Project, datasets: dict[str, ArgillaDataset]) -> None:
    """Stop before anything is planned or pushed if the datasets were built from another source."""
    stamps = {shard: dataset.metadata.get(SOURCE_STAMP) for shard, dataset in datasets.items()}
    switch = source_switch(
        project.name, project.source.identity, project.source.replaces, stamps, project.where_declared
    )
    if switch is not None:
        raise dg.Failure(description=switch.message(), allow_retries=False)


def build_annotation_assignments(project: Project) -> dg.AssetsDefinition:
    settings = project.settings.annotation

    @dg.asset(
        key=project.asset_key("annotation_assignments"),
        ins={"raw_dolly": dg.AssetIn(project.asset_key("raw_dolly"))},
        group_name=project.group,
        kinds={"pandas"},
        required_resource_keys={project.argilla_resource_key},
    )
    def annotation_assignments(context: dg.AssetExecutionContext, raw_dolly: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """Record → annotator; records someone already answered stay where they are, only untouched ones move."""
        argilla = argilla_client(context, project.argilla_resource_key)
        datasets = argilla.datasets_named(project.dataset_name)
        refuse_a_source_switch(project, datasets)
        existing = argilla.annotator_usernames()
        annotators = (
            existing if settings.annotators == "all" else [name for name in settings.annotators if name in existing]
        )
        without_account = [] if settings.annotators == "all" else sorted(set(settings.annotators) - set(existing))
        if without_account:
            context.log.warning(
                f"declared annotator(s) {without_account} have no annotator account in Argilla at {argilla.api_url}: "
                "their share goes to the others until the accounts exist (embedded server: "
                f"CURATION_ARGILLA_ANNOTATORS={','.join(without_account)} curation-argilla bootstrap)"
            )
        placements, answered = current_placement(argilla, datasets)
        # Argilla deleted the answers of deleted accounts; the collected copies still pin their records.
        held = records_held_by_departed(read_kept_answers(project, FEEDBACK_COLUMNS), set(argilla.user_ids_by_name()))
        for record_id, shard in held:
            placements.setdefault(record_id, set()).add(shard)
        answered |= held
        plan = plan_team_assignments(
            list(raw_dolly["id"]),
            annotators,
            seed=settings.seed,
            placements=placements,
            answered_pairs=answered,
            overlap_share=settings.overlap.share,
            annotators_per_overlap_record=settings.overlap.annotators_per_record,
        )
        moved = sum(
            1
            for record_id, annotator in zip(plan["id"], plan["annotator"])
            if annotator not in placements.get(record_id, {annotator})
        )
        shares = plan["annotator"].value_counts().sort_index()
        # Someone taken off the team (or deleted) keeps the records they answered, and nothing else.
        former = shares[~shares.index.isin(annotators)]
        partitions = project.annotator_partitions.name
        new_partitions = sorted(set(plan["annotator"]) - set(context.instance.get_dynamic_partitions(partitions)))
        if new_partitions:
            context.instance.add_dynamic_partitions(partitions, new_partitions)
        return dg.Output(
            plan,
            metadata={
                "source": project.source.identity,
                "records": int(plan["id"].nunique()),
                "annotators": len(shares) - len(former),
                "share_sizes": dg.MetadataValue.json(shares[shares.index.isin(annotators)].to_dict()),
                "answered_records_kept_by_former_annotators": dg.MetadataValue.json(former.to_dict()),
                "declared_annotators_without_account": dg.MetadataValue.json(without_account),
                "records_locked_by_answers": int(plan["locked"].sum()),
                "records_with_overlap": int(plan.loc[plan["overlap"], "id"].nunique()),
                "overlap_copies": int(plan["copy"].sum()),
                "records_held_for_deleted_accounts": len(held),
                "records_moved_since_last_plan": moved,
                "seed": settings.seed,
            },
        )

    return annotation_assignments
