"""The shared layout: titles below Plotly's toolbar, notes under the title, the legend under
the plot with room for its rows on a phone, the plot area's height kept."""

from __future__ import annotations

import plotly.graph_objects as go

from visualize.style import (
    AXIS_PX,
    LEGEND_ROW_PX,
    MAX_TITLE_CHARS,
    MODEBAR_PX,
    NOTE_PX,
    PLOT_PX,
    TITLE_PX,
    legend_rows,
    styled,
)


def lines(n: int) -> go.Figure:
    return go.Figure([go.Scatter(x=[1], y=[1], name=f"line {i}") for i in range(n)])


def test_the_title_starts_below_the_toolbar():
    fig = styled(lines(1), "T" * 60, 300)
    title = fig.layout.title
    assert title.yref == "container" and title.yanchor == "top" and title.y == 1
    assert title.pad.t == MODEBAR_PX, "the toolbar's row is left to the toolbar"
    assert fig.layout.margin.t >= MODEBAR_PX + TITLE_PX, "the title sits in the top margin"
    assert len(title.text) == MAX_TITLE_CHARS and title.text.endswith("…")


def test_notes_and_legend_add_to_the_plot_area_not_take_from_it():
    plain = styled(lines(2), "t", 300)
    noted = styled(lines(2), "t", 300, notes=["a " * 40])  # 80 characters: two lines
    for fig in (plain, noted):
        margin = fig.layout.margin
        assert fig.layout.height - margin.t - margin.b - LEGEND_ROW_PX * 1 - 10 == 300 - PLOT_PX
    assert noted.layout.margin.t - plain.layout.margin.t == 2 * NOTE_PX
    assert noted.layout.title.subtitle.text.count("<br>") == 1
    assert plain.layout.margin.b == AXIS_PX and plain.layout.margin.autoexpand is True


def test_legend_rows_as_plotly_wraps_them():
    assert legend_rows([], 300) == 0
    assert legend_rows(["a", "b"], 300) == 1, "they fit in one row"
    # Not in one row: a grid whose columns are as wide as the widest entry (44 + 7 * 20).
    names = ["x" * 20, "y" * 20, "a", "b"]  # 470 px in all
    assert legend_rows(names, 380) == 2 and legend_rows(names, 470) == 1
    assert legend_rows(names, 300) == 4
    assert styled(lines(10), "t", 300).layout.height > styled(lines(2), "t", 300).layout.height
