"""The recompute mask over a linked prompt: which positions were new, reused or recomputed."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from engine.generate import RunResult
from engine.link import Kind
from engine.prompt import Layout
from visualize.style import KIND_COLORS, KIND_NAMES, empty_figure, short, styled, token_label


def segment_names(layout: Layout) -> list[str]:
    """Per prompt position, the segment it belongs to: "prefix", "chunk 2: <title>", "suffix"."""
    names: list[str] = []
    chunk_number = 0
    for seg in layout.segments:
        if seg.kind == "chunk":
            chunk_number += 1
            name = f"chunk {chunk_number}: {short(seg.title)}"
        else:
            name = seg.kind
        names.extend([name] * len(seg.token_ids))
    return names


def recompute_mask_strip(results: Sequence[RunResult], tokens: Sequence[str]) -> go.Figure:
    """One strip per run over every prompt position, coloured new / cached / recomputed.

    `tokens` are the prompt's tokens decoded one by one (the runs share one layout); hover
    shows each position's token and segment. Chunk starts are marked with lines and ticks.
    """
    if not results:
        return empty_figure("Run a comparison to see which tokens each algorithm recomputed.")
    layout = results[0].layout
    if len(tokens) != layout.num_tokens:
        raise ValueError(f"{len(tokens)} tokens given for a prompt of {layout.num_tokens}")
    segments = segment_names(layout)
    labels = [token_label(t) for t in tokens]
    kinds = [Kind(k) for k in range(3)]
    z = [list(r.mask) for r in results]
    custom = [[[labels[i], segments[i], KIND_NAMES[Kind(m)]] for i, m in enumerate(r.mask)]
              for r in results]
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
    ticks, ticktext = [], []
    for number, seg in enumerate(layout.chunks, 1):
        fig.add_vline(x=seg.start - 0.5, line_width=1.5, line_color="#212529")
        ticks.append(seg.start)
        ticktext.append(f"C{number}")
    suffix = layout.segments[-1]
    fig.add_vline(x=suffix.start - 0.5, line_width=1.5, line_dash="dot", line_color="#212529")
    fig.update_xaxes(tickvals=ticks, ticktext=ticktext, title_text="prompt position",
                     range=[-0.5, layout.num_tokens - 0.5], showgrid=False)
    fig.update_yaxes(tickvals=list(range(len(results))),
                     ticktext=[r.algorithm for r in results], autorange="reversed",
                     showgrid=False)
    return styled(fig, "Recompute mask (lines: chunk starts; dotted: the question)",
                  110 + 42 * len(results))
