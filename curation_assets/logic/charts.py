"""The bar and line charts plotly express draws, built directly from graph objects.

A refresh draws seven charts. plotly express reaches each through generic machinery (its
arguments normalised, a frame per trace, every default cascaded): about 20 ms a chart on the
benchmark machine, against 2 ms for the same figure built from graph objects. Only what our
charts use is here; `test_charts.py` holds each figure to plotly express's own, property by
property, on the tables the pipeline charts and on generated ones.
"""

from __future__ import annotations

import pandas as pd


def bar_chart(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    title: str,
    color: str | None = None,
    text: str | None = None,
    range_y: list[float] | None = None,
):
    """`px.bar(frame, x=x, y=y, color=color, text=text, range_y=range_y, title=title)`."""
    import plotly.graph_objects as go

    traces = []
    for position, (group, rows) in enumerate(_groups(frame, color)):
        traces.append(
            go.Bar(
                hovertemplate=_hover(x, y, color, group, text),
                legendgroup=group,
                marker={"color": _colour(position), "pattern": {"shape": ""}},
                name=group,
                orientation="v",
                showlegend=color is not None,
                textposition="auto",
                x=_values(rows[x]),
                xaxis="x",
                y=_values(rows[y]),
                yaxis="y",
                **({"text": rows[text].to_numpy(dtype=float)} if text else {}),
            )
        )
    figure = go.Figure(traces, _layout(x, y, color if traces else None, title))
    figure.update_layout(barmode="relative")
    if range_y is not None:
        figure.update_yaxes(range=range_y)
    return figure


def line_chart(frame: pd.DataFrame, x: str, y: str, *, color: str, title: str):
    """`px.line(frame, x=x, y=y, color=color, markers=True, title=title)`."""
    import plotly.graph_objects as go

    traces = [
        go.Scatter(
            hovertemplate=_hover(x, y, color, group, None),
            legendgroup=group,
            line={"color": _colour(position), "dash": "solid"},
            marker={"symbol": "circle"},
            mode="lines+markers",
            name=group,
            orientation="v",
            showlegend=True,
            x=_values(rows[x]),
            xaxis="x",
            y=_values(rows[y]),
            yaxis="y",
        )
        for position, (group, rows) in enumerate(_groups(frame, color))
    ]
    return go.Figure(traces, _layout(x, y, color if traces else None, title))


def _groups(frame: pd.DataFrame, color: str | None) -> list[tuple[str, pd.DataFrame]]:
    """One trace's rows per value of `color`, in the order the values first appear (as plotly express orders them)."""
    if color is None:
        return [("", frame)]
    return [(str(value), rows) for value, rows in frame.groupby(color, sort=False)]


def _values(column: pd.Series):
    """A column as plotly express hands it to its traces: a time zone is dropped, keeping the wall-clock time."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_localize(None)
    return column.to_numpy()


def _hover(x: str, y: str, color: str | None, group: str, text: str | None) -> str:
    parts = ([f"{color}={group}"] if color else []) + [f"{x}=%{{x}}", f"{y}=%{{y}}"]
    parts += [f"{text}=%{{text}}"] if text else []
    return "<br>".join(parts) + "<extra></extra>"


def _colour(position: int) -> str:
    """The default template's colour for the trace at this position, as plotly express cycles them."""
    import plotly.colors
    import plotly.io as pio

    # plotly express's own fallback for a template without colours (such as "none").
    colours = pio.templates[pio.templates.default].layout.colorway or plotly.colors.qualitative.D3
    return colours[position % len(colours)]


def _layout(x: str, y: str, color: str | None, title: str) -> dict:
    """The axes, legend and title; the legend has a title only where `color` split the rows into traces."""
    return {
        "xaxis": {"anchor": "y", "domain": [0.0, 1.0], "title": {"text": x}},
        "yaxis": {"anchor": "x", "domain": [0.0, 1.0], "title": {"text": y}},
        "legend": {"title": {"text": color}, "tracegroupgap": 0} if color else {"tracegroupgap": 0},
        "title": {"text": title},
    }
