"""Attention maps over a linked prompt (the EPIC paper's Figure 4) and the mass on chunk sinks.

A naively linked prompt shows a bright column at every chunk start: each chunk was compiled
alone, so its first tokens became an attention sink. LegoLink recomputes those tokens with
the context in view and the false sinks fade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from engine.inspection import InspectResult
from visualize.style import algorithm_color, empty_figure, short, styled, token_label

MODES = ("minmax", "softmax")
MAX_COLUMNS = 600  # about the plot's width in pixels


def attention_matrix(result: InspectResult, layer: int | None, head: int | None,
                     mode: str = "minmax") -> torch.Tensor:
    """[num_queries, num_keys] attention of the query rows, NaN where a key is masked.

    mode "softmax": attention weights; "minmax": scaled QKᵀ min-max normalised per row, as the
    paper plots it. Averaged over layers when `layer` is None and over heads when `head` is.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    scores = result.scores  # [layers, heads, queries, keys]
    num_layers, num_heads = scores.shape[:2]
    if layer is not None:
        if not 0 <= layer < num_layers:
            raise ValueError(f"layer must be in [0, {num_layers - 1}], got {layer}")
        scores = scores[layer:layer + 1]
    if head is not None:
        if not 0 <= head < num_heads:
            raise ValueError(f"head must be in [0, {num_heads - 1}], got {head}")
        scores = scores[:, head:head + 1]
    visible = torch.isfinite(scores)
    if mode == "softmax":
        values = torch.softmax(scores, dim=-1)
    else:
        low = scores.masked_fill(~visible, float("inf")).amin(dim=-1, keepdim=True)
        high = scores.masked_fill(~visible, float("-inf")).amax(dim=-1, keepdim=True)
        values = (scores - low) / (high - low).clamp_min(1e-12)
    values = values.masked_fill(~visible, float("nan"))
    return torch.nanmean(values, dim=(0, 1))


def _key_labels(result: InspectResult, key_tokens: Sequence[str] | None,
                num_keys: int) -> list[str]:
    layout = result.run.layout
    names = ["prefix"] * num_keys
    for number, seg in enumerate(layout.chunks, 1):
        names[seg.start:seg.end] = [f"chunk {number}: {short(seg.title)}"] * len(seg.token_ids)
    suffix = layout.segments[-1]
    names[suffix.start:suffix.end] = ["question"] * len(suffix.token_ids)
    names[layout.num_tokens:] = ["answer"] * (num_keys - layout.num_tokens)
    tokens = list(key_tokens or [])[:num_keys]
    # Generated tokens are keys too; their text is in the query rows (shifted by one).
    tokens += list(result.query_tokens[1:])[: num_keys - len(tokens)]
    tokens += [""] * (num_keys - len(tokens))
    return [f"{token_label(t)} · {n}" if t else n for t, n in zip(tokens, names, strict=True)]


def pool_columns(matrix: torch.Tensor,
                 max_columns: int = MAX_COLUMNS) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Max over bins of adjacent keys, so that a one-position sink stays visible when a long
    prompt has more positions than the plot has pixels.

    -> (values [queries, bins], the position each value comes from [queries, bins], bin
    width). A bin whose keys are all masked stays NaN; width 1 returns the matrix as it is.
    """
    num_queries, num_keys = matrix.shape
    width = max(1, math.ceil(num_keys / max_columns))
    pad = (-num_keys) % width
    filled = torch.nn.functional.pad(torch.nan_to_num(matrix, nan=-math.inf), (0, pad),
                                     value=-math.inf)
    values, offsets = filled.view(num_queries, -1, width).max(dim=-1)
    positions = offsets + torch.arange(0, num_keys + pad, width)
    return values.masked_fill(values == -math.inf, math.nan), positions, width


def attention_heatmaps(results: Mapping[str, InspectResult], layer: int | None = None,
                       head: int | None = None, mode: str = "minmax",
                       key_tokens: Sequence[str] | None = None) -> go.Figure:
    """One heatmap per run, stacked on a shared position axis: rows are the query tokens (the
    last prompt token, then the generated ones), columns the context positions (max-pooled
    into at most MAX_COLUMNS bins). Chunk starts are marked; `key_tokens` (the prompt decoded
    token by token) label the hover."""
    if not results:
        return empty_figure("Inspect a request to see its attention maps.")
    labels = list(results)
    fig = make_subplots(rows=len(labels), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=labels)
    width = 1
    for row, label in enumerate(labels, 1):
        result = results[label]
        values, positions, width = pool_columns(attention_matrix(result, layer, head, mode))
        keys = _key_labels(result, key_tokens, result.scores.shape[-1])
        queries = [f"{'last prompt token' if q == 0 else f'answer token {q}'}: "
                   f"{token_label(t)}" for q, t in enumerate(result.query_tokens)]
        custom = [[[queries[q], int(p), keys[p]] for p in positions[q].tolist()]
                  for q in range(values.shape[0])]
        fig.add_trace(go.Heatmap(
            z=values.tolist(), x=[b * width + (width - 1) / 2 for b in range(values.shape[1])],
            coloraxis="coloraxis", customdata=custom, hoverongaps=False,
            hovertemplate=("%{customdata[0]}<br>→ pos %{customdata[1]}: %{customdata[2]}<br>"
                           "value %{z:.3f}<extra></extra>")), row=row, col=1)
        fig.update_yaxes(tickvals=list(range(values.shape[0])),
                         ticktext=[token_label(t, 10) for t in result.query_tokens],
                         autorange="reversed", row=row, col=1)
    first = results[labels[0]].run.layout
    # Chunk starts as long ticks on every panel, not lines: a line would hide the one-column
    # sink it marks.
    fig.update_xaxes(tickvals=[s.start for s in first.chunks], showticklabels=True,
                     ticktext=[f"C{n}" for n in range(1, len(first.chunks) + 1)], showgrid=False,
                     ticks="outside", ticklen=10, tickwidth=2, tickcolor="#212529")
    pooled = f"; each column the max of {width} positions" if width > 1 else ""
    fig.update_xaxes(title_text=f"context position (C = chunk start{pooled})", row=len(labels),
                     col=1)
    scale_title = "min-max QKᵀ" if mode == "minmax" else "softmax"
    fig.update_layout(coloraxis=dict(colorscale="Inferno", colorbar=dict(title=scale_title)))
    where = f"layer {layer}" if layer is not None else "mean over layers"
    who = f"head {head}" if head is not None else "mean over heads"
    return styled(fig, f"Attention of the answer tokens ({where}, {who})",
                  120 + 190 * len(labels))


def sink_mass_bars(results: Mapping[str, InspectResult], k: int,
                   layer: int | None = None) -> go.Figure:
    """Grouped bars: attention mass on each chunk's first `k` tokens, one colour per run.

    A false sink shows as a tall bar at every chunk start under naive linking.
    """
    if not results:
        return empty_figure("Inspect a request to see the attention mass on chunk starts.")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    fig = go.Figure()
    for label, result in results.items():
        chunks = result.run.layout.chunks
        names = [f"C{n}" for n in range(1, len(chunks) + 1)]
        fig.add_trace(go.Bar(
            x=names, y=result.sink_mass(k, layer), name=label,
            marker_color=algorithm_color(label), customdata=[short(c.title, 40) for c in chunks],
            hovertemplate=f"<b>{label}</b><br>%{{x}}: %{{customdata}}<br>mass %{{y:.3f}}"
                          "<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="attention mass", rangemode="tozero")
    fig.update_xaxes(title_text="chunk")
    where = f"layer {layer}" if layer is not None else "all layers"
    return styled(fig, f"Attention on each chunk's first {k} tokens ({where})", 320)
