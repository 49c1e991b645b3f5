"""Every response from every annotator dataset, discards included."""


import dagster as dg
import pandas as pd

from ..annotation_settings import DATASET_NAME
from ..argilla_mapping import FEEDBACK_COLUMNS, feedback_frame, feedback_rows
from ..logic.departed import finished_answers, with_departed_answers
from ..resources import ArgillaResource
from ..storage import CurationOutputs, kept_answers_path, read_kept_answers
from .shards import annotator_shards


@dg.asset(deps=[annotator_shards], group_name="feedback", kinds={"argilla", "pandas"})
def collected_feedback(
    context: dg.AssetExecutionContext, argilla: ArgillaResource, outputs: CurationOutputs
) -> dg.Output[pd.DataFrame]:
    """One row per record and annotator: submitted, discarded, draft or pending, with the answers and the originals."""
    usernames_by_id = {user_id: name for name, user_id in argilla.user_ids_by_name().items()}
    rows = []
    for shard, dataset in sorted(argilla.datasets_named(DATASET_NAME).items()):
        rows += feedback_rows(list(argilla.iter_records(dataset["id"])), shard, usernames_by_id)
    # Argilla deletes a user's responses with the account: put back what we collected before.
    feedback, put_back = with_departed_answers(
        feedback_frame(rows), read_kept_answers(outputs, FEEDBACK_COLUMNS), set(usernames_by_id.values())
    )
    finished_answers(feedback).to_parquet(kept_answers_path(outputs), index=False)
    status_counts = feedback["status"].value_counts().to_dict()
    return dg.Output(
        feedback,
        metadata={
            "rows": len(feedback),
            "records": feedback["record_id"].nunique(),
            "annotator_datasets": feedback["shard"].nunique(),
            "answers_of_deleted_accounts": put_back,
            **{f"status_{status}": int(status_counts.get(status, 0)) for status in ("submitted", "discarded", "draft", "pending")},
        },
    )
