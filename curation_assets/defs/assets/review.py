"""Disagreements go to a reviewer: who reviews what, each reviewer's queue in Argilla, and their verdicts."""

import dagster as dg
import pandas as pd

from ...argilla_adapter.dataset_settings import review_dataset_settings
from ...argilla_adapter.mapping import display_upgrades, review_frame, review_rows, to_review_records
from ...logic.curation import within_source
from ...logic.ids import ids_in
from ...logic.markdown import markdown_table
from ...logic.review import assign_reviewers, find_disagreements
from ..project import Project
from ..resources import ARGILLA_WRITES_POOL, argilla_client

REVIEW_QUEUE_COLUMNS = ["record_id", "category", "annotators", "reason", "versions", "closest", "prefill", "reviewer"]


def build_review_queue(project: Project) -> dg.AssetsDefinition:
    review = project.settings.review

    @dg.asset(
        key=project.asset_key("review_queue"),
        ins={
            "collected_feedback": dg.AssetIn(project.asset_key("collected_feedback")),
            "quality_signals": dg.AssetIn(project.asset_key("quality_signals")),
        },
        group_name=project.group,
        kinds={"argilla", "pandas"},
        required_resource_keys={project.argilla_resource_key},
    )
    def review_queue(
        context: dg.AssetExecutionContext, collected_feedback: pd.DataFrame, quality_signals: pd.DataFrame
    ):
        """Records whose annotators disagree (one discarded and one submitted, or final texts below the similarity
        threshold), each with the reviewer who adjudicates it."""
        argilla = argilla_client(context, project.argilla_resource_key)
        feedback, _ = within_source(collected_feedback, quality_signals["id"])
        disagreements = find_disagreements(feedback, review.similarity_threshold)
        previous, answered = {}, set()
        for reviewer, dataset in argilla.datasets_named(project.review_dataset_name).items():
            for record in argilla.iter_records(dataset.id):
                previous[record["external_id"]] = reviewer
                if record.get("responses"):
                    answered.add(record["external_id"])
        existing = set(argilla.annotator_usernames())
        reviewers = [name for name in review.reviewers if name in existing]
        if set(review.reviewers) - set(reviewers):
            context.log.warning(
                f"reviewer(s) {sorted(set(review.reviewers) - set(reviewers))} have no annotator account in Argilla "
                f"at {argilla.api_url}: their disagreements go to the other reviewers until the accounts exist"
            )
        assigned = assign_reviewers(disagreements, reviewers, project.settings.annotation.seed, previous, answered)
        queue = disagreements.merge(assigned, on="record_id", how="left").fillna({"reviewer": ""})
        partitions = project.reviewer_partitions.name
        new_partitions = sorted(set(assigned["reviewer"]) - set(context.instance.get_dynamic_partitions(partitions)))
        if new_partitions:
            context.instance.add_dynamic_partitions(partitions, new_partitions)
        shown = queue.assign(annotators=queue["annotators"].map(", ".join))[
            ["record_id", "annotators", "reason", "reviewer"]
        ]
        return dg.Output(
            queue[REVIEW_QUEUE_COLUMNS],
            metadata={
                "disagreements": len(queue),
                "without_reviewer": int((queue["reviewer"] == "").sum()),
                "by_reviewer": dg.MetadataValue.json(queue["reviewer"].value_counts().to_dict()),
                "until_adjudicated": review.until_adjudicated,
                "preview": dg.MetadataValue.md(
                    markdown_table(shown, rows=20, limit=120) if len(queue) else "_no disagreement_"
                ),
            },
        )

    return review_queue


def build_review_shards(project: Project) -> dg.AssetsDefinition:
    @dg.asset(
        key=project.asset_key("review_shards"),
        ins={
            "review_queue": dg.AssetIn(project.asset_key("review_queue")),
            "collected_feedback": dg.AssetIn(project.asset_key("collected_feedback")),
        },
        partitions_def=project.reviewer_partitions,
        pool=ARGILLA_WRITES_POOL,
        group_name=project.group,
        kinds={"argilla"},
        required_resource_keys={project.argilla_resource_key},
    )
    def review_shards(
        context: dg.AssetExecutionContext, review_queue: pd.DataFrame, collected_feedback: pd.DataFrame
    ) -> dg.MaterializeResult:
        """The reviewer's disagreements in their own review dataset: the original, every version, the closest one pre-
        filled; answered reviews never touched."""
        argilla = argilla_client(context, project.argilla_resource_key)
        reviewer = context.partition_key
        mine = review_queue[review_queue["reviewer"] == reviewer]
        dataset = argilla.ensure_annotator_dataset(reviewer, project.review_dataset_name, review_dataset_settings)
        argilla.allow_extra_metadata(dataset)
        existing = list(argilla.iter_records(dataset.id))
        answered = {record["external_id"] for record in existing if record.get("responses")}
        # Versions change while a review waits (an annotator edits an answer): unanswered reviews are pushed again.
        to_push = mine[~ids_in(mine["record_id"], answered)]
        withdrawn = [
            record["id"]
            for record in existing
            if record["external_id"] not in set(mine["record_id"]) and record["external_id"] not in answered
        ]
        argilla.upsert_records(dataset, to_review_records(to_push, collected_feedback))
        # Answered reviews pushed before display copies keep their text, now escaped (their markdown shows as typed).
        upgraded = display_upgrades([record for record in existing if record["external_id"] in answered])
        argilla.upsert_records(dataset, upgraded)
        argilla.delete_records(dataset.id, withdrawn)
        # Only now that every review holds display copies: a plain text field shows a raw one as live HTML.
        argilla.show_fields_as_plain_text(dataset)
        return dg.MaterializeResult(
            metadata={
                "reviewer": reviewer,
                "reviews_planned": len(mine),
                "reviews_pushed": len(to_push),
                "reviews_answered": len(answered),
                "reviews_withdrawn": len(withdrawn),
                "answered_reviews_given_display_copies": len(upgraded),
                "argilla_dataset": dg.MetadataValue.url(
                    f"{argilla.api_url.rstrip('/')}/dataset/{dataset.id}/annotation-mode"
                ),
            }
        )

    return review_shards


def build_collected_reviews(project: Project) -> dg.AssetsDefinition:
    @dg.asset(
        key=project.asset_key("collected_reviews"),
        deps=[project.asset_key("review_shards")],
        group_name=project.group,
        kinds={"argilla", "pandas"},
        required_resource_keys={project.argilla_resource_key},
    )
    def collected_reviews(context: dg.AssetExecutionContext) -> dg.Output[pd.DataFrame]:
        """Every reviewer's verdict and final texts, read from the review datasets."""
        argilla = argilla_client(context, project.argilla_resource_key)
        usernames_by_id = {user_id: name for name, user_id in argilla.user_ids_by_name().items()}
        rows = []
        for reviewer, dataset in sorted(argilla.datasets_named(project.review_dataset_name).items()):
            rows += review_rows(list(argilla.iter_records(dataset.id)), reviewer, usernames_by_id)
        reviews = review_frame(rows)
        return dg.Output(
            reviews,
            metadata={
                "reviews": len(reviews),
                "by_status": dg.MetadataValue.json(reviews["status"].value_counts().to_dict()),
                "by_verdict": dg.MetadataValue.json(reviews["verdict"].dropna().value_counts().to_dict()),
            },
        )

    return collected_reviews
