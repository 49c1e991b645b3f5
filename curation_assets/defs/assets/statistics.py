"""What annotators changed, as charts: interactive HTML on disk, an image and tables in the Dagster UI."""


import dagster as dg
import pandas as pd

from ..logic.statistics import compute_statistics, markdown_report, plotly_figures, summary_png
from ..storage import CurationOutputs


@dg.asset(group_name="feedback", kinds={"plotly", "pandas"})
def change_statistics(collected_feedback: pd.DataFrame, quality_signals: pd.DataFrame, outputs: CurationOutputs) -> dg.Output[dict]:
    """Response status, changed-field combinations, per category, per annotator, how much each field changed, and each quality flag's precision."""
    statistics = compute_statistics(collected_feedback, quality_signals)
    folder = outputs.folder("statistics")
    for name, figure in plotly_figures(statistics).items():
        # "directory": one plotly.min.js beside the pages, so the charts open offline.
        figure.write_html(folder / f"{name}.html", include_plotlyjs="directory")
    png = summary_png(statistics)
    (folder / "summary.png").write_bytes(png)
    tables = statistics.tables()
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False)
    return dg.Output(
        tables,
        metadata={
            "report": dg.MetadataValue.md(markdown_report(tables, png)),
            "submitted": int(statistics.status_counts.set_index("status")["count"].get("submitted", 0)),
            "flag_precision": dg.MetadataValue.md(statistics.flag_precision.to_markdown(index=False)),
            "charts_folder": dg.MetadataValue.path(str(folder)),
        },
    )
