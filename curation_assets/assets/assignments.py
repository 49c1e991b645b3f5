"""Who annotates what: every valid record exactly once, balanced, stable as the team changes."""


import dagster as dg
import pandas as pd
from pydantic import Field

from ..annotation_settings import DATASET_NAME
from ..argilla_mapping import FEEDBACK_COLUMNS
from ..logic.assignment import plan_assignments
from ..logic.departed import records_held_by_departed
from ..resources import ArgillaResource
from ..storage import CurationOutputs, read_kept_answers


class AssignmentConfig(dg.Config):
    seed: int = Field(default=42, description="Seed of the shuffle; the same seed and inputs give the same plan")
    annotators: list[str] = Field(
        default_factory=list, description="Annotator usernames; empty means every Argilla user with the annotator role"
    )


def current_placement(argilla: ArgillaResource) -> tuple[dict[str, str], set[str]]:
    """Where each record sits in Argilla now, and which records already have a response."""
    placement, answered = {}, set()
    for annotator, dataset in argilla.datasets_named(DATASET_NAME).items():
        for record in argilla.iter_records(dataset["id"]):
            placement[record["external_id"]] = annotator
            if record.get("responses"):
                answered.add(record["external_id"])
    return placement, answered


@dg.asset(group_name="annotation", kinds={"pandas"})
def annotation_assignments(
    context: dg.AssetExecutionContext,
    config: AssignmentConfig,
    raw_dolly: pd.DataFrame,
    argilla: ArgillaResource,
    outputs: CurationOutputs,
) -> dg.Output[pd.DataFrame]:
    """Record → annotator; records someone already answered stay where they are, only untouched ones move."""
    annotators = config.annotators or argilla.annotator_usernames()
    previous, answered = current_placement(argilla)
    # Argilla deleted the answers of deleted accounts; the collected copies still pin their records.
    held = records_held_by_departed(read_kept_answers(outputs, FEEDBACK_COLUMNS), set(argilla.user_ids_by_name()))
    previous.update(held)
    answered |= set(held)
    plan = plan_assignments(list(raw_dolly["id"]), annotators, seed=config.seed, previous=previous, answered=answered)
    moved = sum(1 for record_id, annotator in zip(plan["id"], plan["annotator"]) if previous.get(record_id, annotator) != annotator)
    new_partitions = sorted(set(plan["annotator"]) - set(context.instance.get_dynamic_partitions("annotators")))
    if new_partitions:
        context.instance.add_dynamic_partitions("annotators", new_partitions)
    return dg.Output(
        plan,
        metadata={
            "records": len(plan),
            "annotators": len(set(plan["annotator"])),
            "share_sizes": dg.MetadataValue.json(plan["annotator"].value_counts().sort_index().to_dict()),
            "records_locked_by_answers": int(plan["locked"].sum()),
            "records_held_for_deleted_accounts": len(held),
            "records_moved_since_last_plan": moved,
            "seed": config.seed,
        },
    )
