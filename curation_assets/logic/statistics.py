"""The tutorial's two histograms and more: status, changed fields, per category and annotator, edit size."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import pandas as pd

from .changes import COMPARED, annotate_changes
from .charts import bar_chart, line_chart
from .ids import ids_in
from .markdown import inert_text, markdown_table
from .quality import FLAGS
from .vocabulary import STATUSES, ResponseStatus

STATUS_ORDER = [str(status) for status in STATUSES]


@dataclass
class ChangeStatistics:
    status_counts: pd.DataFrame  # status, count
    change_counts: pd.DataFrame  # changed_fields, count (submitted only)
    by_category: pd.DataFrame  # category × status counts, plus share of submitted that changed
    by_annotator: pd.DataFrame  # annotator × status counts, plus share of submitted that changed
    field_change: pd.DataFrame  # field, changed, share_changed, mean_similarity_when_changed
    submitted_changes: pd.DataFrame  # the submitted rows with their change annotations
    flag_precision: (
        pd.DataFrame
    )  # per quality flag: reviewed, changed, discarded, precision; plus "no flag" as baseline

    def tables(self) -> dict[str, pd.DataFrame]:
        """The published tables (everything but the per-record rows), by name: what the asset returns and the card shows."""
        return {
            "status_counts": self.status_counts,
            "change_counts": self.change_counts,
            "by_category": self.by_category,
            "by_annotator": self.by_annotator,
            "field_change": self.field_change,
            "flag_precision": self.flag_precision,
        }


FLAG_PRECISION_COLUMNS = ["flag", "reviewed", "changed", "discarded", "unchanged", "precision"]
NO_FLAG_ROW = "(no flag)"


def flag_precision(feedback: pd.DataFrame, submitted: pd.DataFrame, signals: pd.DataFrame | None) -> pd.DataFrame:
    """Per flag, of the flagged records annotators reviewed (submitted or discarded), the share they changed or discarded.

    That share is the flag's precision as the annotators judge it; the "(no flag)" row is the same
    share for unflagged records, the baseline a useful flag must beat. Drafts and pending records are
    not reviewed yet and count nowhere; every new submission updates the table.
    """
    if signals is None or signals.empty:
        return pd.DataFrame(columns=FLAG_PRECISION_COLUMNS)
    # The id columns alone, not the rows with every text; and the flags of the reviewed records only.
    changed = submitted[["record_id"]].assign(
        outcome=(submitted["changed_fields"] != "none").map({True: "changed", False: "unchanged"})
    )
    discarded = feedback.loc[feedback["status"] == ResponseStatus.DISCARDED, ["record_id"]].assign(outcome="discarded")
    reviewed = pd.concat([changed[["record_id", "outcome"]], discarded[["record_id", "outcome"]]], ignore_index=True)
    of_reviewed = ids_in(signals["id"], reviewed["record_id"]).to_numpy()
    flags_by_id = dict(zip(signals["id"][of_reviewed].astype(str), signals["flags"][of_reviewed]))
    reviewed["flags"] = (
        reviewed["record_id"].astype(str).map(lambda record_id: list(flags_by_id.get(record_id, [])) or [NO_FLAG_ROW])
    )
    per_flag = reviewed.explode("flags")
    rows = []
    for flag in [*FLAGS, NO_FLAG_ROW]:
        outcomes = per_flag.loc[per_flag["flags"] == flag, "outcome"].value_counts()
        total = int(outcomes.sum())
        acted = int(outcomes.get("changed", 0) + outcomes.get("discarded", 0))
        rows.append(
            {
                "flag": flag,
                "reviewed": total,
                "changed": int(outcomes.get("changed", 0)),
                "discarded": int(outcomes.get("discarded", 0)),
                "unchanged": int(outcomes.get("unchanged", 0)),
                "precision": round(acted / total, 3) if total else None,
            }
        )
    return pd.DataFrame(rows, columns=FLAG_PRECISION_COLUMNS)


def compute_statistics(
    feedback: pd.DataFrame, signals: pd.DataFrame | None = None, known_changes: pd.DataFrame | None = None
) -> ChangeStatistics:
    """The statistics of this feedback; `known_changes` (`changes.known_annotations` of an earlier call) spares comparing
    again the submitted rows whose texts it holds."""
    status_counts = (
        feedback["status"]
        .value_counts()
        .reindex(STATUS_ORDER, fill_value=0)
        .rename_axis("status")
        .reset_index(name="count")
    )
    submitted = annotate_changes(feedback[feedback["status"] == ResponseStatus.SUBMITTED], known_changes)
    change_counts = submitted["changed_fields"].value_counts().rename_axis("changed_fields").reset_index(name="count")

    def by(column: str) -> pd.DataFrame:
        table = pd.crosstab(feedback[column], feedback["status"]).reindex(columns=STATUS_ORDER, fill_value=0)
        changed_share = submitted.groupby(column)["changed_fields"].apply(lambda labels: (labels != "none").mean())
        table["submitted_changed_share"] = changed_share.reindex(table.index).fillna(0.0).round(3)
        return table.reset_index()

    field_rows = []
    for _, _, name in COMPARED:
        changed = submitted[f"{name}_changed"] if len(submitted) else pd.Series(dtype=bool)
        similarities = submitted.loc[changed, f"{name}_similarity"] if len(submitted) else pd.Series(dtype=float)
        field_rows.append(
            {
                "field": name,
                "changed": int(changed.sum()),
                "share_changed": round(float(changed.mean()), 3) if len(changed) else 0.0,
                "mean_similarity_when_changed": round(float(similarities.mean()), 3) if len(similarities) else None,
            }
        )
    return ChangeStatistics(
        status_counts=status_counts,
        change_counts=change_counts,
        by_category=by("category"),
        by_annotator=by("annotator"),
        field_change=pd.DataFrame(field_rows),
        submitted_changes=submitted,
        flag_precision=flag_precision(feedback, submitted, signals),
    )


def plotly_figures(statistics: ChangeStatistics) -> dict:
    """Interactive figures, by file stem, for the HTML saved beside the data."""
    by_category = statistics.by_category.melt(
        id_vars="category", value_vars=STATUS_ORDER, var_name="status", value_name="count"
    )
    by_annotator = statistics.by_annotator.melt(
        id_vars="annotator", value_vars=STATUS_ORDER, var_name="status", value_name="count"
    )
    figures = {
        "response_status": bar_chart(statistics.status_counts, x="status", y="count", title="Responses by status"),
        "changed_fields": bar_chart(
            statistics.change_counts, x="changed_fields", y="count", title="Submitted records: which fields changed"
        ),
        "status_by_category": bar_chart(by_category, x="category", y="count", color="status", title="Status by category"),
        "status_by_annotator": bar_chart(by_annotator, x="annotator", y="count", color="status", title="Status by annotator"),
        "field_change": bar_chart(statistics.field_change, x="field", y="share_changed", title="Share of submitted records changed, per field"),
    }  # fmt: skip
    if len(statistics.flag_precision):
        figures["flag_precision"] = flag_precision_figure(statistics.flag_precision)
    return figures


def flag_precision_figure(table: pd.DataFrame):
    """Bars: share of reviewed flagged records that annotators changed or discarded, per flag; the dashed line is unflagged
    records."""
    reviewed = table[(table["reviewed"] > 0) & (table["flag"] != NO_FLAG_ROW)]
    figure = bar_chart(
        reviewed, x="flag", y="precision", text="reviewed", range_y=[0, 1],
        title="Quality flags: share of reviewed flagged records that annotators changed or discarded (bar label: records reviewed)",
    )  # fmt: skip
    baseline = table.loc[table["flag"] == NO_FLAG_ROW, "precision"]
    if len(baseline) and pd.notna(baseline.iloc[0]):
        figure.add_hline(y=float(baseline.iloc[0]), line_dash="dash", annotation_text="records with no flag")
    return figure


def warm_up_charts() -> None:
    """Load what the charts load on first use: matplotlib's figure and PNG canvas (`summary_png`), and plotly's graph
    objects with the template and validators their first bar chart, line and dashed line bring (`plotly_figures`, the
    pace timeline). Nothing is kept."""
    import importlib

    for module in ("matplotlib.figure", "matplotlib.artist", "matplotlib.backends.backend_agg"):
        importlib.import_module(module)
    sample = pd.DataFrame({"label": ["a", "b"], "count": [1, 2], "status": ["submitted", "draft"]})
    bar_chart(sample, x="label", y="count", color="status", text="count", range_y=[0, 1], title="warm-up").add_hline(
        y=1, line_dash="dash", annotation_text="warm-up"
    )
    line_chart(sample, x="label", y="count", color="status", title="warm-up")


def summary_png(statistics: ChangeStatistics) -> bytes:
    """A static image of the two tutorial histograms (matplotlib: no browser needed, unlike plotly's PNG export).

    Drawn on a bare `Figure` rather than through pyplot, whose global figure registry and backend
    switching are of no use to a picture saved at once: the PNG is byte for byte the same, and its
    modules can be imported ahead, in another thread, while a refresh waits for Argilla
    (`warm_up_charts`, defs/warm_up.py).
    """
    import matplotlib

    buffer = io.BytesIO()
    # Saved in the style it was drawn in: ticks and labels matplotlib makes while it saves take their sizes from it.
    with matplotlib.rc_context(SUMMARY_STYLE):
        summary_figure(statistics).savefig(buffer, format="png")
    return buffer.getvalue()


SUMMARY_STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11}


def summary_figure(statistics: ChangeStatistics):
    """The matplotlib figure `summary_png` saves."""
    import matplotlib
    from matplotlib.artist import setp
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    with matplotlib.rc_context(SUMMARY_STYLE):
        figure = Figure(figsize=(11, 4.2), dpi=110)
        status_axis, change_axis = figure.subplots(1, 2)
        status_axis.bar(statistics.status_counts["status"], statistics.status_counts["count"], color="#4c72b0")
        status_axis.set_title("Responses by status")
        status_axis.set_ylabel("responses")
        change_axis.bar(statistics.change_counts["changed_fields"], statistics.change_counts["count"], color="#dd8452")
        change_axis.set_title("Submitted records: which fields changed")
        change_axis.set_ylabel("submitted records")
        for axis in (status_axis, change_axis):
            axis.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 or 1.5 when there are few
        # Labels such as "instruction+input+response" need room: slanted, anchored at their end.
        setp(change_axis.get_xticklabels(), rotation=25, ha="right", rotation_mode="anchor")
        figure.tight_layout()
    return figure


# Dagster's asset page shows a markdown value in place only under 1,000 characters (longer ones
# sit behind a "[Show Markdown]" button), and has no image metadata type: a chart that people see
# without a click is therefore a compact table with a bar drawn in block characters.
INLINE_MARKDOWN_LIMIT = 1000
_BAR_WIDTH = 20


def text_bar_chart(labels: list[str], values: list[float], value_header: str, scale_max: float | None = None) -> str:
    """A markdown table with one bar per row, short enough to show inline on the asset's page.

    Rows that would push the table past the inline limit are summed into a last "… n more" row.
    """
    top = scale_max if scale_max is not None else max([value for value in values if value is not None] or [0])
    rows = []
    for label, value in zip(labels, values):
        filled = 0 if not top or value is None else round(_BAR_WIDTH * value / top)
        shown = "–" if value is None else (f"{value:g}" if isinstance(value, float) else f"{value:,}")
        rows.append(f"| {inert_text(label, 28)} | {shown} | {'█' * filled or '·'} |")
    header = [f"| | {value_header} | |", "| --- | ---: | --- |"]
    while len("\n".join(header + rows)) > INLINE_MARKDOWN_LIMIT and len(rows) > 1:
        rows = rows[:-2] + [f"| … {len(labels) - len(rows) + 2} more | | |"]
    return "\n".join(header + rows)


def inline_charts(statistics: ChangeStatistics) -> dict[str, str]:
    """The charts shown in place on the asset's page: status, changed fields, and flag precision."""
    charts = {
        "chart_status": text_bar_chart(
            list(statistics.status_counts["status"]), [int(v) for v in statistics.status_counts["count"]], "responses"
        ),
        "chart_changed_fields": (
            text_bar_chart(
                list(statistics.change_counts["changed_fields"]),
                [int(v) for v in statistics.change_counts["count"]],
                "submitted",
            )
            if len(statistics.change_counts)
            else "_no submissions yet_"
        ),
    }
    reviewed = statistics.flag_precision[statistics.flag_precision["reviewed"] > 0]
    if len(reviewed):
        labels = [f"{flag} ({reviewed_count})" for flag, reviewed_count in zip(reviewed["flag"], reviewed["reviewed"])]
        charts["chart_flag_precision"] = text_bar_chart(
            labels, [float(value) for value in reviewed["precision"]], "changed or discarded", scale_max=1.0
        )
    return charts


def markdown_report(tables: dict[str, pd.DataFrame], png: bytes | None) -> str:
    """Markdown for the Dagster UI and the dataset card: the image inline if given, then the tables of
    `ChangeStatistics.tables()`, every cell escaped (`markdown_table`) like every markdown preview."""
    parts = []
    if png:
        parts.append(f"![change statistics](data:image/png;base64,{base64.b64encode(png).decode()})")
    parts += [
        "**Responses by status**",
        markdown_table(tables["status_counts"], rows=None),
        "**Submitted records: changed fields**",
        markdown_table(tables["change_counts"], rows=None) if len(tables["change_counts"]) else "_no submissions yet_",
        "**Per field**",
        markdown_table(tables["field_change"], rows=None),
    ]
    if len(tables["flag_precision"]):
        parts += [
            "**Quality flags: how often annotators changed or discarded flagged records** "
            "(precision = (changed + discarded) / reviewed; compare with the `(no flag)` row)",
            markdown_table(tables["flag_precision"], rows=None),
        ]
    return "\n\n".join(parts)
