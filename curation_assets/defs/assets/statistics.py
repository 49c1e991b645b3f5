"""What annotators changed, as charts: in place on the asset's page, as an image, and as interactive HTML on disk."""

from pathlib import Path

import dagster as dg
import pandas as pd

from ...logic.changes import COMPARISON_VERSION, KNOWN_COLUMNS, known_annotations
from ...logic.curation import within_source
from ...logic.statistics import compute_statistics, inline_charts, markdown_report, plotly_figures, summary_png
from ...logic.vocabulary import ResponseStatus
from ..project import Project
from ..warm_up import finish_warm_ups


def build_change_statistics(project: Project) -> dg.AssetsDefinition:
    @dg.asset(
        key=project.asset_key("change_statistics"),
        ins={
            "collected_feedback": dg.AssetIn(project.asset_key("collected_feedback")),
            "quality_signals": dg.AssetIn(project.asset_key("quality_signals")),
        },
        group_name=project.group,
        kinds={"plotly", "pandas"},
    )
    def change_statistics(collected_feedback: pd.DataFrame, quality_signals: pd.DataFrame) -> dg.Output[dict]:
        """Response status, changed-field combinations, per category, per annotator, how much each field changed, and each
        quality flag's precision."""
        feedback, _ = within_source(collected_feedback, quality_signals["id"])
        # Each edited answer's similarity to its original, kept from the last run: after a few new answers only those are
        # compared word by word (difflib), not every edited answer again.
        known_path = project.output_folder("change_cache") / f"known_changes-v{COMPARISON_VERSION}.parquet"
        statistics = compute_statistics(feedback, quality_signals, _read_known_changes(known_path))
        known_annotations(statistics.submitted_changes).to_parquet(known_path, index=False)
        finish_warm_ups()  # the chart libraries, if collected_feedback started loading them, are loaded by now
        folder = project.output_folder("statistics")
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
                **{name: dg.MetadataValue.md(chart) for name, chart in inline_charts(statistics).items()},
                "submitted": int(
                    statistics.status_counts.set_index("status")["count"].get(ResponseStatus.SUBMITTED, 0)
                ),
                "report": dg.MetadataValue.md(markdown_report(tables, png)),
                "charts_folder": dg.MetadataValue.path(str(folder)),
            },
        )

    return change_statistics


def _read_known_changes(path: Path) -> pd.DataFrame | None:
    """The comparisons the last run kept, or None (none yet, unreadable, or of another layout: every row is compared, as on
    a first run)."""
    try:
        known = pd.read_parquet(path)
    except (OSError, ValueError):
        return None
    return known if tuple(known.columns) == KNOWN_COLUMNS else None
