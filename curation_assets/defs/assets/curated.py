"""The curated dataset, published as files (and to the Hub when configured)."""


import dagster as dg
import pandas as pd
from pydantic import Field

from ..logic.curation import curate_with_rule_fixes, dataset_card, push_to_hub, write_curated
from ..logic.statistics import markdown_report
from ..storage import CurationOutputs


class PublishConfig(dg.Config):
    hub_repo_id: str = Field(default="", description="Hub dataset repo to push to (needs HF_TOKEN); empty: files only")
    source_name: str = Field(default="databricks-dolly-15k", description="Named in the dataset card")
    apply_rule_fixes_to_unannotated: bool = Field(
        default=False,
        description=(
            "Also publish records nobody annotated yet when a safe rule cleaned them (citation markers removed, "
            "whitespace and encoding repaired), with provenance 'rule'. Off: only submitted records are published."
        ),
    )


@dg.asset(
    group_name="publish",
    kinds={"huggingface", "parquet"},
    check_specs=[dg.AssetCheckSpec("curated_records_are_valid", asset="curated_dolly")],
)
def curated_dolly(
    config: PublishConfig,
    collected_feedback: pd.DataFrame,
    quality_signals: pd.DataFrame,
    change_statistics: dict,
    outputs: CurationOutputs,
):
    """Submitted records with the annotators' answers in place of the originals (opt-in: plus rule-cleaned untouched records); discards, drafts and the rest left out."""
    curated = curate_with_rule_fixes(collected_feedback, quality_signals, config.apply_rule_fixes_to_unannotated)
    # The card shows the statistics change_statistics computed for this same feedback: not computed twice.
    card = dataset_card(curated, markdown_report(change_statistics, png=None), config.source_name)
    paths = write_curated(curated, card, outputs.folder("curated_dolly"))
    metadata = {
        "records": len(curated),
        "provenance": dg.MetadataValue.json(curated["provenance"].value_counts().to_dict()),
        **{name: dg.MetadataValue.path(str(path)) for name, path in paths.items()},
    }
    if config.hub_repo_id:
        metadata["hub_url"] = dg.MetadataValue.url(push_to_hub(curated, card, config.hub_repo_id))
    yield dg.Output(curated, metadata=metadata)
    yield _check_curated(curated, collected_feedback)


def _check_curated(curated: pd.DataFrame, feedback: pd.DataFrame) -> dg.AssetCheckResult:
    empty = curated[(curated["instruction"].str.strip() == "") | (curated["response"].str.strip() == "")]
    duplicated = curated[curated["id"].duplicated()]
    submitted_ids = set(feedback.loc[feedback["status"] == "submitted", "record_id"].astype(str))
    missing = sorted(submitted_ids - set(curated["id"]))
    return dg.AssetCheckResult(
        check_name="curated_records_are_valid",
        passed=empty.empty and duplicated.empty and not missing,
        description="No empty instruction or response, unique ids, every submitted record present.",
        metadata={
            "empty_instruction_or_response": dg.MetadataValue.json(list(empty["id"])[:50]),
            "duplicate_ids": dg.MetadataValue.json(list(duplicated["id"])[:50]),
            "submitted_but_missing": dg.MetadataValue.json(missing[:50]),
        },
    )
