"""The recompute mask over a linked prompt: which positions were new, reused or recomputed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from engine import Kind, Layout, RunResult
from visualize.style import (
    KIND_COLORS,
    KIND_NAMES,
    chunk_numbers,
    empty_figure,
    in_own_order,
    run_label,
    short,
    styled,
    token_label,
)

MAX_TICKS = 40  # chunk-start labels on the position axis


def segment_names(layout: Layout, composed: Layout | None = None) -> list[str]:
    """Per prompt position, the segment it belongs to: "prefix", "chunk 2: <title>", "suffix";
    chunks numbered as `composed` (default: this layout) orders them."""
    names: list[str] = []
    numbers = iter(chunk_numbers(layout, composed or layout))
    for seg in layout.segments:
        if seg.kind == "chunk":
            name = f"chunk {next(numbers)}: {short(seg.title)}"
        else:
            name = seg.kind
        names.extend([name] * len(seg.token_ids))
    return names


def recompute_mask_strip(results: Sequence[RunResult], tokens: Sequence[str]) -> go.Figure:
    """One strip per run over every prompt position, coloured new / cached / recomputed.

    `tokens` are the prompt's tokens decoded one by one (the runs share one layout, or link its
    chunks in their own order: such a row is labelled reordered, its hover names each chunk as
    composed); hover shows each position's token and segment. Chunk starts are marked with
    lines and ticks.
    """
    if not results:
        return empty_figure("Run a comparison to see which tokens each algorithm recomputed.")
    layout = results[0].layout
    if len(tokens) != layout.num_tokens:
        raise ValueError(f"{len(tokens)} tokens given for a prompt of {layout.num_tokens}")
    labels = [token_label(t) for t in tokens]
    kinds = [Kind(k) for k in range(3)]
    z = [list(r.mask) for r in results]
    custom = []
    for r in results:
        segments = segment_names(r.layout, layout)
        own = in_own_order(r.layout, layout, labels)
        custom.append([[own[i], segments[i], KIND_NAMES[Kind(m)]] for i, m in enumerate(r.mask)])
    # A discrete colour scale: each kind owns a third of [0, 1].
    scale = []
    for i, kind in enumerate(kinds):
        scale += [[i / 3, KIND_COLORS[kind]], [(i + 1) / 3, KIND_COLORS[kind]]]
    fig = go.Figure(go.Heatmap(
        z=z, y=list(range(len(results))), colorscale=scale, zmin=-0.5, zmax=2.5, showscale=False,
        customdata=custom, xgap=0, ygap=3,
        hovertemplate=("pos %{x} · <b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
                       "%{customdata[2]}<extra></extra>")))
    for kind in kinds:  # legend entries for the discrete colours
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=KIND_NAMES[kind],
                                 marker=dict(color=KIND_COLORS[kind], size=10, symbol="square")))
    # Chunk starts as one line trace (segments split by None), the question's start dotted:
    # the figure grows linearly with the number of chunks (one add_vline per chunk would copy
    # every shape each time, quadratic in Plotly).
    starts = [seg.start for seg in layout.chunks]
    top = len(results) - 0.5
    fig.add_trace(go.Scatter(x=[x for s in starts for x in (s - 0.5, s - 0.5, None)],
                             y=[y for _ in starts for y in (-0.5, top, None)], mode="lines",
                             line=dict(width=1.5, color="#212529"), hoverinfo="skip",
                             showlegend=False))
    suffix = layout.segments[-1].start - 0.5
    fig.add_trace(go.Scatter(x=[suffix, suffix], y=[-0.5, top], mode="lines", hoverinfo="skip",
                             line=dict(width=1.5, dash="dot", color="#212529"),
                             showlegend=False))
    every = max(1, math.ceil(len(starts) / MAX_TICKS))
    fig.update_xaxes(tickvals=starts[::every],
                     ticktext=[f"C{n}" for n in range(1, len(starts) + 1, every)],
                     title_text="prompt position", range=[-0.5, layout.num_tokens - 0.5],
                     showgrid=False)
    fig.update_yaxes(tickvals=list(range(len(results))),
                     ticktext=[run_label(r.algorithm, r.layout, layout) for r in results],
                     autorange="reversed",
                     showgrid=False)
    return styled(fig, "Recompute mask (| chunk start, ┆ question)", 150 + 42 * len(results))

