"""The shared look of every figure: colours per algorithm and per mask kind, token labels."""

from __future__ import annotations

import html

import plotly.graph_objects as go

from engine.link import Kind
from engine.request import AlgorithmSpec

KIND_COLORS = {Kind.NEW: "#adb5bd", Kind.CACHED: "#37b24d", Kind.RECOMPUTED: "#f76707"}
KIND_NAMES = {Kind.NEW: "new (not cached)", Kind.CACHED: "cached (reused)",
              Kind.RECOMPUTED: "recomputed"}
ALGORITHM_COLORS = {"full_recompute": "#495057", "prefix_cache": "#7048e8", "naive": "#e03131",
                    "cacheblend": "#1c7ed6", "legolink": "#2f9e44", "querylink": "#f59f00"}
FONT = dict(family="Inter, system-ui, sans-serif", size=12)


def algorithm_color(label: str) -> str:
    """Colour of an algorithm by its label, parameter suffix ignored ("legolink-16")."""
    return ALGORITHM_COLORS.get(AlgorithmSpec.name_of(label), "#868e96")


def token_label(token: str, max_chars: int = 24) -> str:
    """A token made visible and safe in hover text: whitespace shown, HTML escaped."""
    shown = token.replace("\n", "↵").replace("\t", "⇥").replace(" ", "·")
    if len(shown) > max_chars:
        shown = shown[: max_chars - 1] + "…"
    return html.escape(shown or "∅")


def short(text: str, max_chars: int = 28) -> str:
    """A title cut to fit an axis label."""
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def styled(fig: go.Figure, title: str, height: int) -> go.Figure:
    """Apply the common layout: white template, title, compact margins."""
    fig.update_layout(template="plotly_white", title=dict(text=title, x=0.01, font_size=15),
                      height=height, font=FONT, margin=dict(l=60, r=20, t=60, b=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1,
                                  xanchor="right"))
    return fig


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure that says what to do to fill it."""
    fig = go.Figure()
    fig.add_annotation(text=html.escape(message), showarrow=False, font=dict(size=14,
                       color="#868e96"), xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return styled(fig, "", height)
