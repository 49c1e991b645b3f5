"""The charts built from graph objects are the figures plotly express draws: every property, data and layout."""

import json

import numpy as np
import pandas as pd
import plotly.express as px
from hypothesis import given, settings
from hypothesis import strategies as st

from curation_assets.logic.charts import bar_chart, line_chart
from curation_assets.logic.quality import FLAGS
from curation_assets.logic.statistics import (
    NO_FLAG_ROW,
    STATUS_ORDER,
    compute_statistics,
    flag_precision_figure,
    plotly_figures,
)


def figure_json(figure) -> dict:
    """The figure as its HTML page holds it (plotly's JSON), as a value: property order aside, equal means the same
    chart."""
    return json.loads(figure.to_json())


labels = st.text(alphabet="abcé <>&_+", min_size=1, max_size=6)


@st.composite
def bar_tables(draw):
    rows = draw(st.integers(min_value=0, max_value=12))
    table = pd.DataFrame(
        {
            "label": draw(st.lists(labels, min_size=rows, max_size=rows)),
            "group": draw(st.lists(st.sampled_from(STATUS_ORDER), min_size=rows, max_size=rows)),
            "count": draw(st.lists(st.integers(0, 10**6), min_size=rows, max_size=rows)),
            "share": draw(
                st.lists(st.one_of(st.none(), st.floats(0, 1, allow_nan=False)), min_size=rows, max_size=rows)
            ),
        }
    )
    return table.astype(
        {"label": object, "group": object, "count": "int64", "share": float}
    )  # as charted, when empty too


@given(
    table=bar_tables(),
    y=st.sampled_from(["count", "share"]),
    color=st.sampled_from([None, "group"]),
    text=st.sampled_from([None, "count"]),
    range_y=st.sampled_from([None, [0, 1]]),
    as_arrow=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_a_bar_chart_is_the_figure_plotly_express_draws(table, y, color, text, range_y, as_arrow):
    if text == y:
        text = None  # plotly express then shows the value once in the hover text; our charts never label a bar by y
    table = table.astype({"label": "str", "group": "str"}) if as_arrow else table
    options = {"x": "label", "y": y, "color": color, "text": text, "range_y": range_y, "title": "A <b>title</b>"}
    assert figure_json(bar_chart(table, **options)) == figure_json(px.bar(table, **options))


@given(
    answers=st.lists(st.integers(0, 500), min_size=0, max_size=12),
    names=st.lists(st.sampled_from(["ana", "bruno", "chen", "dana"]), min_size=12, max_size=12),
    zone=st.sampled_from(["UTC", "Europe/Paris", None]),  # the pace timeline's hours are UTC
)
@settings(max_examples=30, deadline=None)
def test_a_line_chart_is_the_figure_plotly_express_draws(answers, names, zone):
    hours = pd.date_range("2026-12-01 08:00", periods=len(answers), freq="h", tz=zone)
    timeline = pd.DataFrame({"hour": hours, "answers": answers, "annotator": names[: len(answers)]})
    options = {"x": "hour", "y": "answers", "color": "annotator", "title": "Answers per hour"}
    assert figure_json(line_chart(timeline, **options)) == figure_json(px.line(timeline, markers=True, **options))


def test_the_statistics_charts_are_the_figures_plotly_express_drew():
    """Every chart of change_statistics, against the plotly express calls it made before (written out here)."""
    randomness = np.random.default_rng(5)
    count = 400
    feedback = pd.DataFrame(
        {
            "record_id": [str(number) for number in range(count)],
            "shard": randomness.choice(["ana", "bruno", "chen"], count),
            "category": randomness.choice(["open_qa", "closed_qa", "brainstorming", "summarization"], count),
            "status": randomness.choice(STATUS_ORDER, count),
            "instruction": "Say hello",
            "context": "",
            "response": "Hello there",
            "new_instruction": "Say hello",
            "new_input": "",
            "new_response": randomness.choice(["Hello there", "Hello, there!", "Hi"], count),
        }
    )
    feedback["annotator"] = feedback["shard"]
    signals = pd.DataFrame(
        {
            "id": feedback["record_id"],
            "flags": [list(randomness.choice(FLAGS, randomness.integers(0, 3), replace=False)) for _ in range(count)],
        }
    )
    statistics = compute_statistics(feedback, signals)
    assert len(statistics.flag_precision) and statistics.flag_precision["reviewed"].gt(0).any()

    by_category = statistics.by_category.melt(
        id_vars="category", value_vars=STATUS_ORDER, var_name="status", value_name="count"
    )
    by_annotator = statistics.by_annotator.melt(
        id_vars="annotator", value_vars=STATUS_ORDER, var_name="status", value_name="count"
    )
    flagged = statistics.flag_precision[
        (statistics.flag_precision["reviewed"] > 0) & (statistics.flag_precision["flag"] != NO_FLAG_ROW)
    ]
    precision = px.bar(
        flagged, x="flag", y="precision", text="reviewed", range_y=[0, 1],
        title="Quality flags: share of reviewed flagged records that annotators changed or discarded (bar label: records reviewed)",
    )  # fmt: skip
    baseline = statistics.flag_precision.set_index("flag")["precision"][NO_FLAG_ROW]
    precision.add_hline(y=float(baseline), line_dash="dash", annotation_text="records with no flag")
    drawn_by_plotly_express = {
        "response_status": px.bar(statistics.status_counts, x="status", y="count", title="Responses by status"),
        "changed_fields": px.bar(statistics.change_counts, x="changed_fields", y="count", title="Submitted records: which fields changed"),
        "status_by_category": px.bar(by_category, x="category", y="count", color="status", title="Status by category"),
        "status_by_annotator": px.bar(by_annotator, x="annotator", y="count", color="status", title="Status by annotator"),
        "field_change": px.bar(statistics.field_change, x="field", y="share_changed", title="Share of submitted records changed, per field"),
        "flag_precision": precision,
    }  # fmt: skip
    figures = plotly_figures(statistics)
    assert sorted(figures) == sorted(drawn_by_plotly_express)
    for name, figure in figures.items():
        assert figure_json(figure) == figure_json(drawn_by_plotly_express[name]), name
    assert figure_json(flag_precision_figure(statistics.flag_precision)) == figure_json(precision)
