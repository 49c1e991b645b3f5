"""How much annotators agree on the records several of them answered (the overlap share)."""

import dagster as dg
import pandas as pd

from ...logic.agreement import compute_agreement
from ...logic.curation import within_source
from ...logic.markdown import markdown_table
from ...logic.statistics import text_bar_chart
from ..project import Project


def build_annotator_agreement(project: Project) -> dg.AssetsDefinition:
    threshold = project.settings.review.similarity_threshold
    key = project.asset_key("annotator_agreement")

    @dg.asset(
        key=key,
        ins={
            "collected_feedback": dg.AssetIn(project.asset_key("collected_feedback")),
            "quality_signals": dg.AssetIn(project.asset_key("quality_signals")),
        },
        group_name=project.group,
        kinds={"pandas"},
        check_specs=[dg.AssetCheckSpec("no_annotator_agrees_far_less", asset=key)],
    )
    def annotator_agreement(collected_feedback: pd.DataFrame, quality_signals: pd.DataFrame):
        """Agreement on records two or more annotators answered: submit vs discard, changed vs kept per field, how similar
        the final texts are; per pair and per annotator."""
        feedback, _ = within_source(collected_feedback, quality_signals["id"])
        agreement = compute_agreement(feedback, threshold)
        people = agreement.annotators
        folder = project.output_folder("agreement")
        for name, table in agreement.tables().items():
            table.to_csv(folder / f"{name}.csv", index=False)
        metadata = {
            "records_answered_by_several": agreement.records,
            "annotator_pairs": len(agreement.pairs),
            "overall": dg.MetadataValue.md(markdown_table(agreement.overall, rows=20)),
            "tables_folder": dg.MetadataValue.path(str(folder)),
        }
        if len(people):
            metadata["chart_agreement"] = dg.MetadataValue.md(
                text_bar_chart(
                    [f"{name} ({shared})" for name, shared in zip(people["annotator"], people["shared_records"])],
                    [float(value) for value in people["outcome_agreement"]],
                    "agrees with the others",
                    scale_max=1.0,
                )
            )
            metadata["by_annotator"] = dg.MetadataValue.md(markdown_table(people, rows=50))
            metadata["pairs"] = dg.MetadataValue.md(markdown_table(agreement.pairs, rows=50))
        else:
            metadata["note"] = "no record was answered by two annotators yet" + (
                "" if project.settings.annotation.overlap.share else " (overlap is off: set annotation.overlap.share)"
            )
        yield dg.Output(agreement.tables(), metadata=metadata)
        outliers = people.loc[people["outlier"], "annotator"].tolist() if len(people) else []
        yield dg.AssetCheckResult(
            check_name="no_annotator_agrees_far_less",
            passed=not outliers,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                "An annotator whose agreement with the others is below the others' median beyond the 95% interval "
                "(on 5 or more shared records): worth a look at their answers and the guidelines."
            ),
            metadata={"outliers": dg.MetadataValue.json(outliers)},
        )

    return annotator_agreement
