"""How fast each annotator works, what is left, and when it will be done."""

import dagster as dg
import pandas as pd

from ...logic.charts import line_chart
from ...logic.curation import within_source
from ...logic.markdown import markdown_table
from ...logic.pace import compute_pace
from ...logic.statistics import text_bar_chart
from ..project import Project


def build_annotator_pace(project: Project) -> dg.AssetsDefinition:
    pause_minutes = project.settings.annotation.pause_minutes

    @dg.asset(
        key=project.asset_key("annotator_pace"),
        ins={
            "collected_feedback": dg.AssetIn(project.asset_key("collected_feedback")),
            "quality_signals": dg.AssetIn(project.asset_key("quality_signals")),
            "change_statistics": dg.AssetIn(project.asset_key("change_statistics")),
            "annotator_agreement": dg.AssetIn(project.asset_key("annotator_agreement")),
        },
        group_name=project.group,
        kinds={"pandas", "plotly"},
    )
    def annotator_pace(
        collected_feedback: pd.DataFrame,
        quality_signals: pd.DataFrame,
        change_statistics: dict,
        annotator_agreement: dict,
    ) -> dg.Output[dict]:
        """Per annotator: answers per hour and median seconds per record (breaks over the pause cut-off left out), records
        left and ETA, next to edit rate and agreement."""
        feedback, _ = within_source(collected_feedback, quality_signals["id"])
        pace = compute_pace(
            feedback, pause_minutes, change_statistics["by_annotator"], annotator_agreement["agreement_by_annotator"]
        )
        folder = project.output_folder("pace")
        for name, table in pace.tables().items():
            table.to_csv(folder / f"{name}.csv", index=False)
        if len(pace.timeline):
            figure = line_chart(pace.timeline, x="hour", y="answers", color="annotator", title="Answers per hour")
            figure.write_html(folder / "pace_timeline.html", include_plotlyjs="directory")
        progress = pace.progress.iloc[0].to_dict()
        metadata = {
            "records_left": int(progress["records_left"]),
            "team_answers_per_hour": progress["team_answers_per_hour"],
            "eta_hours": progress["eta_hours"],
            "pace": dg.MetadataValue.md(markdown_table(pace.pace, rows=50)),
            "pause_cutoff_minutes": pause_minutes,
            "tables_folder": dg.MetadataValue.path(str(folder)),
        }
        rated = pace.pace.dropna(subset=["answers_per_hour"])
        if len(rated):
            metadata["chart_answers_per_hour"] = dg.MetadataValue.md(
                text_bar_chart(
                    list(rated["annotator"]), [float(rate) for rate in rated["answers_per_hour"]], "answers per hour"
                )
            )
        return dg.Output(pace.tables(), metadata=metadata)

    return annotator_pace
