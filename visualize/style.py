"""The shared look of every figure: colours per algorithm and per mask kind, token labels."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from engine import Kind, Layout, algorithm, algorithm_names, split_label

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


MAX_TITLE_CHARS = 44  # a title this long fits a phone's 400 px plot at font size 15


def styled(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Apply the common layout: white template, a title short enough for a phone (cut with
    "…" beyond MAX_TITLE_CHARS), compact margins, the legend under the plot."""
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1] + "…"
    fig.update_layout(template="plotly_white",
                      title=dict(text=plot_text(title), x=0.01, font_size=15),
                      height=height, font=FONT, margin=dict(l=60, r=20, t=50, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0,
                                  xanchor="left"))
    return fig


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure that says what to do to fill it."""
    fig = go.Figure()
    fig.add_annotation(text=plot_text(message), showarrow=False, font=dict(size=14,
                       color="#868e96"), xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return styled(fig, "", height)
