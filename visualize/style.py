"""The shared look of every figure: colours per algorithm and per mask kind, token labels."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import plotly.graph_objects as go

from engine import Kind, Layout, algorithm, algorithm_names, split_label
from visualize.notes import wrap

KIND_COLORS = {Kind.NEW: "#adb5bd", Kind.CACHED: "#37b24d", Kind.RECOMPUTED: "#f76707"}
KIND_NAMES = {Kind.NEW: "new (not cached)", Kind.CACHED: "cached (reused)",
              Kind.RECOMPUTED: "recomputed"}
GREY = "#868e96"  # a label of no registered algorithm
FONT = dict(family="Inter, system-ui, sans-serif", size=12)


def algorithm_color(label: str) -> str:
    """Colour of an algorithm by its label ("legolink-16"): the one its class declares."""
    name = family(label).partition("-")[0]
    return algorithm(name).color if name in algorithm_names() else GREY


def family(label: str) -> str:
    """The settings of one algorithm share a family: "cacheblend-key-15" -> "cacheblend-key",
    "legolink-16" -> "legolink"; a text that is no label is its own family."""
    try:
        name, variant, _ = split_label(label)
    except ValueError:
        return label
    return f"{name}-{variant}" if variant else name


def setting(label: str) -> int:
    """The number a label carries (0 for none): orders the settings of one family."""
    try:
        return int(split_label(label)[2] or 0)
    except ValueError:
        return 0


def chunk_numbers(layout: Layout, composed: Layout) -> list[int]:
    """Each chunk of `layout`, numbered as the prompt was composed (C1 first): an algorithm
    that reorders chunks (infoflow) links them in its own order."""
    return list(layout.order_in(composed) or range(1, len(layout.chunks) + 1))


def in_own_order(layout: Layout, composed: Layout, items: list) -> list:
    """Per-position items of `composed` (its tokens' labels), moved to where `layout` put each
    chunk; the same list when nothing moved."""
    if layout.token_ids == composed.token_ids or layout.order_in(composed) is None:
        return items
    moved = list(items)
    for seg, number in zip(layout.chunks, chunk_numbers(layout, composed), strict=True):
        source = composed.chunks[number - 1]
        moved[seg.start:seg.end] = items[source.start:source.end]
    return moved


def run_label(label: str, layout: Layout, composed: Layout) -> str:
    """An algorithm's label, with its chunk order when it reordered the composed prompt."""
    if not layout.reordered_from(composed):
        return label
    return f"{label} (reordered: {' '.join(f'C{n}' for n in chunk_numbers(layout, composed))})"


def plot_text(text: str) -> str:
    """Text safe in a Plotly label, title or hover: Plotly reads a few HTML tags (<b>, <a>,
    <br>...) and entities, so '&', '<' and '>' are escaped; quotes are left alone (Plotly
    would show "&quot;" as it is)."""
    return html.escape(text, quote=False)


def token_label(token: str, max_chars: int = 24) -> str:
    """A token made visible and safe in hover text: whitespace shown, HTML escaped."""
    shown = token.replace("\n", "↵").replace("\t", "⇥").replace(" ", "·")
    if len(shown) > max_chars:
        shown = shown[: max_chars - 1] + "…"
    return plot_text(shown or "∅")


def short(text: str, max_chars: int = 28) -> str:
    """A title cut to fit an axis label, escaped for Plotly."""
    return plot_text(text if len(text) <= max_chars else text[: max_chars - 1] + "…")


MAX_TITLE_CHARS = 44  # fits a 400 px phone's 336 px figure at font size 14 (7.1 px each)
# The layout's rows, in pixels. Plotly's toolbar (the modebar) sits at the top right of the
# figure, over whatever is there: titles start below its row, so they never collide.
MODEBAR_PX = 32
# Buttons of little use here, left out so that the toolbar keeps to one row on a phone (with
# them it wraps to two below 300 px): zoom, pan, reset and download remain.
SPARE_BUTTONS = ("select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d")
TITLE_PX = 24  # a title's line at font size 14
NOTE_PX = 15  # a note's line at font size 11
SUBPLOT_TITLES_PX = 26  # make_subplots' panel titles, above the plot area
AXIS_PX = 50  # under the plot area: tick labels and the axis title
LEGEND_ROW_PX = 24  # one row of the horizontal legend (23.2 px measured)
MARGINS_X_PX = 110  # left and right of the plot area: 80 asked, Plotly widens it for the ticks
PLOT_PX = 90  # styled's `height` less this is the plot area's height: margins come on top
NOTE_COLOR = "#c92a2a"


def legend_rows(names: list[str], width_px: float) -> int:
    """Rows a horizontal legend of `names` takes where Plotly wraps it at `width_px` (the plot
    area's width). Plotly puts the entries in one row when they fit, else in a grid whose
    columns are as wide as the widest entry (plotly.js computeLegendDimensions). Errs high:
    symbol and gap 44 px, 7 px a character at font size 12, where 6 were measured."""
    widths = [44 + 7 * len(name) for name in names]
    if not widths or sum(widths) <= width_px:
        return len(widths[:1])
    columns = max(1, int(width_px // max(widths)))
    return math.ceil(len(widths) / columns)


def legend_names(fig: go.Figure) -> list[str]:
    """The legend's entries: named line, marker and bar traces not hidden from it."""
    shown = [t.name for t in fig.data if t.type in ("scatter", "bar") and t.name
             and t.showlegend is not False]
    return shown if len(fig.data) > 1 or fig.layout.showlegend else []


def styled(fig: go.Figure, title: str, height: int, notes: Sequence[str] = (),
           narrowest_px: float = 340) -> go.Figure:
    """Apply the common layout: white template, a title short enough for a phone (cut with
    "…" beyond MAX_TITLE_CHARS) below the toolbar's row, `notes` in red under the title (each
    wrapped for a phone), the legend under the plot. The figure is as tall as a plot area of
    `height - PLOT_PX` pixels needs with the title, the notes and the legend in as many rows
    as it takes at `narrowest_px`; where the legend takes fewer (a wider page), Plotly gives
    the plot area what it leaves (the margin expands to fit the legend, no more), so the plot
    area is never shorter than that. The width follows the page (Gradio's autosize)."""
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1] + "…"
    lines = [plot_text(line) for note in notes for line in wrap(note)]
    panels = any(a.yref == "paper" and a.yanchor == "bottom" and (a.y or 0) >= 0.99
                 for a in fig.layout.annotations)
    top = (MODEBAR_PX + (TITLE_PX if title else 0) + NOTE_PX * len(lines)
           + (SUBPLOT_TITLES_PX if panels else 8))
    rows = legend_rows(legend_names(fig), narrowest_px - MARGINS_X_PX)
    plot_px = height - PLOT_PX
    fig.update_layout(template="plotly_white",
                      title=dict(text=plot_text(title), x=0.01, xanchor="left", yref="container",
                                 y=1, yanchor="top", pad=dict(t=MODEBAR_PX), font_size=14,
                                 subtitle=dict(text="<br>".join(lines),
                                               font=dict(size=11, color=NOTE_COLOR))),
                      modebar=dict(remove=list(SPARE_BUTTONS)),
                      height=plot_px + top + AXIS_PX + LEGEND_ROW_PX * rows + 10, font=FONT,
                      margin=dict(l=60, r=20, t=top, b=AXIS_PX, autoexpand=True),
                      legend=dict(orientation="h", yanchor="top", y=-AXIS_PX / plot_px,
                                  x=0, xanchor="left"))
    return fig


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure that says what to do to fill it."""
    fig = go.Figure()
    fig.add_annotation(text=plot_text(message), showarrow=False, font=dict(size=14,
                       color="#868e96"), xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return styled(fig, "", height)
