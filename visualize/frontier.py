"""The fidelity-cost frontier from bench.frontier.run_frontier's dict: first-token KL from full
recompute against median TTFT, one point per algorithm setting, one panel per context length.
Labels by visualize/labels.py's rule: beside a point where they fit on a phone, and always in
the legend (one entry per algorithm, naming its settings) and the hover."""

from __future__ import annotations

import math
from itertools import zip_longest
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualize.labels import LABEL_FONT_PX, PHONE_FIGURE_PX, Point, place_labels
from visualize.notes import noise_note, zero_score_note
from visualize.style import (
    PLOT_PX,
    algorithm_color,
    empty_figure,
    family,
    plot_text,
    setting,
    styled,
)
from visualize.ticks import log_axis

PANEL_PX = 350  # a panel's height; panels stack (side by side they do not fit a phone)
GAP_PX = 70  # between panels: the upper one's ticks and axis title, the lower one's title
# Left and right of the plot area: styled's margins (80 px), widened by Plotly where the KL
# axis' ticks and title need more (73 + 30 px measured at 340 px); an estimate too wide only
# leaves a label off that would have fitted, never draws one that overlaps.
MARGIN_X_PX = 110
COMPARED = 16  # the setting the README compares (legolink-16, cacheblend-15, querylink-16)
KL_HEADROOM = 1.15  # the KL axis runs to this times the largest KL: room for labels above


def frontier_figure(frontier: dict[str, Any]) -> go.Figure:
    """One panel per context length, one above the other: each algorithm's settings as points
    joined in order of their parameter (legolink-2 .. legolink-32), KL against median TTFT
    (log scale); down and left is better. full_recompute sits at KL 0, the reference."""
    blocks = frontier.get("lengths") or {}
    if not blocks:
        return empty_figure("Run the frontier benchmark to see first-token KL against TTFT.")
    titles = [(f"{b['title']} · " if b.get("title") else "") +
              f"{b['num_chunks']} chunks · {b['context_tokens_mean']:.0f} tokens · n={b['n']}"
              for b in blocks.values()]
    plot_px = PANEL_PX * len(blocks) + GAP_PX * (len(blocks) - 1)
    fig = make_subplots(rows=len(blocks), cols=1, subplot_titles=titles,
                        vertical_spacing=GAP_PX / plot_px)
    fig.update_annotations(font_size=13)
    panel_px = PHONE_FIGURE_PX - MARGIN_X_PX
    shown: set[str] = set()
    for panel, block in enumerate(blocks.values(), 1):
        rows = block["algorithms"]
        families = _families(rows)
        axis = log_axis(r["ttft_ms_median"] for r in rows.values())
        kl_top = max(r["first_token_kl"] for r in rows.values()) * KL_HEADROOM or 1.0
        placed = place_labels(_points(rows, families, axis.get("range"), kl_top, panel_px),
                              panel_px, PANEL_PX)
        for name, labels in families.items():
            data = [rows[label] for label in labels]
            variant = "-" in name  # cacheblend-key: cacheblend's colour, its own marks
            fig.add_trace(go.Scatter(
                x=[r["ttft_ms_median"] for r in data], y=[r["first_token_kl"] for r in data],
                text=[plot_text(label) if placed[label] else "" for label in labels],
                textposition=[placed[label] or "top center" for label in labels],
                textfont=dict(size=LABEL_FONT_PX, color="#343a40"),
                hovertext=[plot_text(label) for label in labels],
                mode="lines+markers+text", name=plot_text(legend_name(name, labels)),
                legendgroup=name, showlegend=name not in shown, cliponaxis=False,
                line=dict(color=algorithm_color(name), width=2,
                          dash="dash" if variant else "solid"),
                marker=dict(size=11, color=algorithm_color(name),
                            symbol="diamond" if variant else "circle",
                            line=dict(width=1, color="white")),
                customdata=[[r["agreement"], r["recompute_share"], r["score"]] for r in data],
                hovertemplate=("<b>%{hovertext}</b><br>median TTFT %{x:.0f} ms<br>first-token "
                               "KL %{y:.4f}<br>answers equal to full recompute "
                               "%{customdata[0]:.0%}<br>recomputed %{customdata[1]:.1%} of "
                               "cached<br>task score %{customdata[2]:.3f}<extra></extra>")),
                row=panel, col=1)
            shown.add(name)
        fig.update_xaxes(title_text="median TTFT (ms)", row=panel, col=1, **axis)
        fig.update_yaxes(title_text="first-token KL (nats)", range=[0, kl_top], row=panel,
                         col=1)
    title = (f"Fidelity vs cost · {frontier.get('dataset', '')} · {frontier.get('model', '')} "
             f"· {frontier.get('device', '')}")
    zero = next((note for b in blocks.values() if (note := zero_score_note(b["algorithms"]))),
                "")
    examples = min(b["n"] for b in blocks.values())
    return styled(fig, title, plot_px + PLOT_PX, notes=[noise_note(examples, "example"), zero],
                  narrowest_px=PHONE_FIGURE_PX)


def legend_name(name: str, labels: list[str]) -> str:
    """An algorithm's legend entry, naming each setting drawn: "naive", "prophetkv-16",
    "legolink-{2,8,16,32}" (in the order the line joins them)."""
    if len(labels) == 1:
        return labels[0]
    return f"{name}-{{{','.join(str(setting(label)) for label in labels)}}}"


def _points(rows: dict[str, dict[str, float]], families: dict[str, list[str]],
            x_range: list[float] | None, kl_top: float, panel_px: float) -> list[Point]:
    """Every point of a panel in pixels at the phone's width, in the order labels are placed:
    each algorithm's setting nearest COMPARED first (the one the README's tables compare),
    then the next nearest, and so on, so that every algorithm gets a label before any gets a
    second."""
    lo, hi = x_range or [0.0, 1.0]
    height = PANEL_PX
    nearest = [sorted(labels, key=lambda label: abs(math.log2(max(setting(label), 1) / COMPARED)))
               for labels in families.values()]
    order = [label for rank in zip_longest(*nearest) for label in rank if label is not None]
    return [Point(label,
                  (math.log10(max(rows[label]["ttft_ms_median"], 1e-9)) - lo) / (hi - lo)
                  * panel_px,
                  (1 - rows[label]["first_token_kl"] / kl_top) * height)
            for label in order]


def _families(rows: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    """Labels grouped by algorithm name, each group in order of its parameter."""
    families: dict[str, list[str]] = {}
    for label in rows:
        families.setdefault(family(label), []).append(label)
    return {name: sorted(labels, key=setting) for name, labels in families.items()}
