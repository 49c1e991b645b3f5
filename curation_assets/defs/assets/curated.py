"""The curated dataset, published as files (and to the Hub when the project names a repo)."""

import dagster as dg
import pandas as pd

from ...logic.curation import curate_with_rule_fixes, dataset_card, within_source
from ...logic.ids import ids_in
from ...logic.statistics import markdown_report
from ...logic.vocabulary import ResponseStatus
from ..project import Project
from ..publishing import push_to_hub, write_curated
from ..source_loading import DATA_DIR

DOLLY_ATTRIBUTION_HEADING = "## License and attribution (CC BY-SA 3.0)"


def build_curated_dolly(project: Project) -> dg.AssetsDefinition:
    publish = project.settings.publish
    key = project.asset_key("curated_dolly")

    @dg.asset(
        key=key,
        ins={
            "collected_feedback": dg.AssetIn(project.asset_key("collected_feedback")),
            "quality_signals": dg.AssetIn(project.asset_key("quality_signals")),
            "change_statistics": dg.AssetIn(project.asset_key("change_statistics")),
            "review_queue": dg.AssetIn(project.asset_key("review_queue")),
            "collected_reviews": dg.AssetIn(project.asset_key("collected_reviews")),
        },
        group_name=project.group,
        kinds={"huggingface", "parquet"},
        check_specs=[dg.AssetCheckSpec("curated_records_are_valid", asset=key)],
    )
    def curated_dolly(
        collected_feedback: pd.DataFrame,
        quality_signals: pd.DataFrame,
        change_statistics: dict,
        review_queue: pd.DataFrame,
        collected_reviews: pd.DataFrame,
    ):
        """Submitted records with the annotators' answers in place of the originals, disagreements as a reviewer
        adjudicated them (opt-in: plus rule-cleaned untouched records); discards, drafts and the rest left out."""
        # Only records of the declared source: answers to a replaced source's records stay in Argilla, not here.
        feedback, answers_outside_source = within_source(collected_feedback, quality_signals["id"])
        adjudications = collected_reviews[collected_reviews["status"] == ResponseStatus.SUBMITTED]
        curated = curate_with_rule_fixes(
            feedback, quality_signals, publish.apply_rule_fixes_to_unannotated, adjudications, project.review_policy
        )
        # The card shows the statistics change_statistics computed for this same feedback: not computed twice.
        card = dataset_card(
            curated,
            markdown_report(change_statistics, png=None),
            project=project.name,
            source=project.source.identity,
            license=publish.license,
            attribution=publish.attribution or _shipped_attribution(project),
            until_adjudicated=project.settings.review.until_adjudicated,
        )
        paths = write_curated(curated, card, project.output_folder("curated_dolly"))
        metadata = {
            "records": len(curated),
            "source": project.source.identity,
            "provenance": dg.MetadataValue.json(curated["provenance"].value_counts().to_dict()),
            "answers_outside_source": answers_outside_source,
            "disagreements_adjudicated": int(ids_in(review_queue["record_id"], adjudications["record_id"]).sum()),
            "disagreements_waiting": int((~ids_in(review_queue["record_id"], adjudications["record_id"])).sum()),
            "until_adjudicated": project.settings.review.until_adjudicated,
            **{name: dg.MetadataValue.path(str(path)) for name, path in paths.items()},
        }
        if publish.hub_repo_id:
            metadata["hub_url"] = dg.MetadataValue.url(push_to_hub(curated, card, publish.hub_repo_id, publish.private))
        yield dg.Output(curated, metadata=metadata)
        yield _check_curated(curated, feedback, set(review_queue["record_id"]))

    return curated_dolly


def _shipped_attribution(project: Project) -> str:
    """The Dolly excerpt's attribution, which CC BY-SA requires on anything derived from it."""
    if not project.source.shipped:
        return ""
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    return readme.split(DOLLY_ATTRIBUTION_HEADING, 1)[1].strip()


def _check_curated(curated: pd.DataFrame, feedback: pd.DataFrame, disagreements: set[str]) -> dg.AssetCheckResult:
    empty = curated[(curated["instruction"].str.strip() == "") | (curated["response"].str.strip() == "")]
    duplicated = curated[curated["id"].duplicated()]
    # A disagreement is settled by its review (or the declared policy), so it may rightly be absent.
    submitted = (feedback["status"] == ResponseStatus.SUBMITTED) & ~ids_in(feedback["record_id"], disagreements)
    submitted_ids = set(feedback.loc[submitted, "record_id"].astype(str))  # the ids alone, not every text
    missing = sorted(submitted_ids - set(curated["id"]))
    return dg.AssetCheckResult(
        check_name="curated_records_are_valid",
        passed=empty.empty and duplicated.empty and not missing,
        description="No empty instruction or response, unique ids, every submitted record of the source present (disagreements as settled).",
        metadata={
            "empty_instruction_or_response": dg.MetadataValue.json(list(empty["id"])[:50]),
            "duplicate_ids": dg.MetadataValue.json(list(duplicated["id"])[:50]),
            "submitted_but_missing": dg.MetadataValue.json(missing[:50]),
        },
    )
