"""Every response from every annotator dataset, discards included."""


import dagster as dg
import pandas as pd

from ..annotation_settings import DATASET_NAME
from ..argilla_mapping import feedback_frame, feedback_rows
from ..resources import ArgillaResource
from .shards import annotator_shards


@dg.asset(deps=[annotator_shards], group_name="feedback", kinds={"argilla", "pandas"})
def collected_feedback(context: dg.AssetExecutionContext, argilla: ArgillaResource) -> dg.Output[pd.DataFrame]:
    """One row per record and annotator: submitted, discarded, draft or pending, with the answers and the originals."""
    usernames_by_id = {user_id: name for name, user_id in argilla.user_ids_by_name().items()}
    rows = []
    for shard, dataset in sorted(argilla.datasets_named(DATASET_NAME).items()):
        rows += feedback_rows(list(argilla.iter_records(dataset["id"])), shard, usernames_by_id)
    feedback = feedback_frame(rows)
    status_counts = feedback["status"].value_counts().to_dict()
    return dg.Output(
        feedback,
        metadata={
            "rows": len(feedback),
            "records": feedback["record_id"].nunique(),
            "annotator_datasets": feedback["shard"].nunique(),
            **{f"status_{status}": int(status_counts.get(status, 0)) for status in ("submitted", "discarded", "draft", "pending")},
        },
    )
