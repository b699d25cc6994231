"""Attention maps over a linked prompt (the EPIC paper's Figure 4) and the mass on chunk sinks.

A naively linked prompt shows a bright column at every chunk start: each chunk was compiled
alone, so its first tokens became an attention sink. LegoLink recomputes those tokens with
the context in view and the false sinks fade. The "difference" view subtracts full
recompute's attention, where a false sink stands out as a red column.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from engine import InspectResult, Layout
from visualize.style import (
    algorithm_color,
    chunk_numbers,
    empty_figure,
    in_own_order,
    plot_text,
    run_label,
    short,
    styled,
    token_label,
)

MODES = ("minmax", "softmax", "difference")
MAX_COLUMNS = 600  # about the plot's width in pixels
MAX_TICKS = 40  # chunk-start labels on the position axis
SOFTMAX_FLOOR = 1e-4  # the log colour scale of softmax weights starts here


def _select(scores: torch.Tensor, layer: int | None, head: int | None) -> torch.Tensor:
    """scores [layers, heads, queries, keys] cut to one layer and/or head."""
    num_layers, num_heads = scores.shape[:2]
    if layer is not None:
        if not 0 <= layer < num_layers:
            raise ValueError(f"layer must be in [0, {num_layers - 1}], got {layer}")
        scores = scores[layer:layer + 1]
    if head is not None:
        if not 0 <= head < num_heads:
            raise ValueError(f"head must be in [0, {num_heads - 1}], got {head}")
        scores = scores[:, head:head + 1]
    return scores


def attention_matrix(result: InspectResult, layer: int | None, head: int | None,
                     mode: str = "minmax") -> torch.Tensor:
    """[num_queries, num_keys] attention of the query rows, NaN where a key is masked.

    mode "softmax": attention weights; "minmax": scaled QKᵀ min-max normalised per row, as the
    paper plots it. Averaged over layers when `layer` is None and over heads when `head` is.
    """
    if mode not in MODES[:2]:
        raise ValueError(f"mode must be one of {', '.join(MODES[:2])}, got {mode!r}")
    scores = _select(result.scores.float(), layer, head)
    visible = torch.isfinite(scores)
    if mode == "softmax":
        values = torch.softmax(scores, dim=-1)
    else:
        low = scores.masked_fill(~visible, float("inf")).amin(dim=-1, keepdim=True)
        high = scores.masked_fill(~visible, float("-inf")).amax(dim=-1, keepdim=True)
        values = (scores - low) / (high - low).clamp_min(1e-12)
    values = values.masked_fill(~visible, float("nan"))
    return torch.nanmean(values, dim=(0, 1))


def difference_matrix(result: InspectResult, reference: InspectResult, layer: int | None,
                      head: int | None) -> torch.Tensor:
    """Softmax attention of `result` minus the reference's, [queries, keys] over the keys
    both have. Row i (i >= 1) is the query of answer token i - 1, which attends to answer
    tokens 0..i-1: it is compared only while both answers agree on those tokens, else NaN."""
    ours = attention_matrix(result, layer, head, "softmax")
    theirs = attention_matrix(reference, layer, head, "softmax")
    rows, keys = min(ours.shape[0], theirs.shape[0]), min(ours.shape[1], theirs.shape[1])
    diff = ours[:rows, :keys] - theirs[:rows, :keys]
    diff[agreeing_tokens(result, reference) + 1:] = float("nan")
    return diff


def agreeing_tokens(result: InspectResult, reference: InspectResult) -> int:
    """How many answer tokens agree with the reference's before the first that differs."""
    same = 0
    for a, b in zip(result.run.token_ids, reference.run.token_ids, strict=False):
        if a != b:
            break
        same += 1
    return same


def difference_title(label: str, result: InspectResult, reference: InspectResult) -> str:
    """A difference panel's title (Plotly text), with a second line saying why rows are blank:
    from the first answer token that differs, the rows query other tokens than the
    reference's and are not compared."""
    same = agreeing_tokens(result, reference)
    title = plot_text(f"{label} (− full recompute)")
    if same + 1 >= len(result.query_tokens):
        return title
    # Short enough for a phone's panel (about 50 characters).
    return title + "<br>" + plot_text(f"blank from answer token {same + 1}: answers differ there")


def _key_labels(result: InspectResult, key_tokens: Sequence[str] | None,
                num_keys: int, composed: Layout | None = None) -> list[str]:
    layout = result.run.layout
    names = ["prefix"] * num_keys
    numbers = chunk_numbers(layout, composed or layout)
    for number, seg in zip(numbers, layout.chunks, strict=True):
        names[seg.start:seg.end] = [f"chunk {number}: {short(seg.title)}"] * len(seg.token_ids)
    suffix = layout.segments[-1]
    names[suffix.start:suffix.end] = ["question"] * len(suffix.token_ids)
    names[layout.num_tokens:] = ["answer"] * (num_keys - layout.num_tokens)
    tokens = list(key_tokens or [])[:num_keys]
    if composed is not None and len(tokens) == composed.num_tokens:
        tokens = in_own_order(layout, composed, tokens)
    # Generated tokens are keys too; their text is in the query rows (shifted by one).
    tokens += list(result.query_tokens[1:])[: num_keys - len(tokens)]
    tokens += [""] * (num_keys - len(tokens))
    return [f"{token_label(t)} · {n}" if t else n for t, n in zip(tokens, names, strict=True)]


def pool_columns(matrix: torch.Tensor,
                 max_columns: int = MAX_COLUMNS) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Max (of the absolute value, sign kept) over bins of adjacent keys, so that a
    one-position sink stays visible when a long prompt has more positions than the plot has
    pixels.

    -> (values [queries, bins], the position each value comes from [queries, bins], bin
    width). A bin whose keys are all masked stays NaN; width 1 returns the matrix as it is.
    """
    num_queries, num_keys = matrix.shape
    width = max(1, math.ceil(num_keys / max_columns))
    pad = (-num_keys) % width
    filled = torch.nn.functional.pad(torch.nan_to_num(matrix.abs(), nan=-math.inf), (0, pad),
                                     value=-math.inf)
    magnitude, offsets = filled.view(num_queries, -1, width).max(dim=-1)
    positions = offsets + torch.arange(0, num_keys + pad, width)
    values = torch.nn.functional.pad(matrix, (0, pad)).gather(1, positions)
    return values.masked_fill(magnitude == -math.inf, math.nan), positions, width


def _colours(mode: str, values: list[torch.Tensor]) -> dict:
    """The colour axis: min-max on a linear scale; softmax weights on a log scale (most are
    tiny, a linear scale shows them all black); differences diverging around 0."""
    if mode == "softmax":
        ticks = list(range(int(math.log10(SOFTMAX_FLOOR)), 1))
        return dict(colorscale="Inferno", cmin=ticks[0], cmax=0, colorbar=dict(
            title="softmax (log)", tickvals=ticks, ticktext=[f"{10.0 ** t:g}" for t in ticks]))
    if mode == "difference":
        top = max([float(torch.nan_to_num(v).abs().max()) for v in values] + [1e-6])
        return dict(colorscale="RdBu_r", cmin=-top, cmax=top, cmid=0,
                    colorbar=dict(title="− full"))
    return dict(colorscale="Inferno", cmin=0, cmax=1, colorbar=dict(title="min-max QKᵀ"))


def attention_heatmaps(results: Mapping[str, InspectResult], layer: int | None = None,
                       head: int | None = None, mode: str = "minmax",
                       key_tokens: Sequence[str] | None = None,
                       reference: InspectResult | None = None) -> go.Figure:
    """One heatmap per run, stacked on a shared position axis: rows are the query tokens (the
    last prompt token, then that run's own answer tokens), columns the context positions
    (max-pooled into at most MAX_COLUMNS bins). Chunk starts are marked; `key_tokens` (the
    prompt decoded token by token) label the hover. Mode "difference" needs `reference`
    (full recompute's inspection) and draws each run's softmax minus the reference's."""
    if not results:
        return empty_figure("Inspect a request to see its attention maps.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "difference" and reference is None:
        raise ValueError("the difference view needs full recompute's attention")
    labels = list(results)
    composed = results[labels[0]].run.layout
    names = {label: run_label(label, results[label].run.layout, composed) for label in labels}
    titles = [difference_title(names[label], results[label], reference) if mode == "difference"
              else plot_text(f"{names[label]} (rows: its own answer)") for label in labels]
    fig = make_subplots(rows=len(labels), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=titles)
    matrices = [difference_matrix(results[label], reference, layer, head)
                if mode == "difference" else
                attention_matrix(results[label], layer, head, mode) for label in labels]
    colours = _colours(mode, matrices)
    width = 1
    for row, (label, matrix) in enumerate(zip(labels, matrices, strict=True), 1):
        result = results[label]
        values, positions, width = pool_columns(matrix)
        keys = _key_labels(result, key_tokens, result.scores.shape[-1], composed)
        queries = [f"{'last prompt token' if q == 0 else f'answer token {q}'}: "
                   f"{token_label(t)}" for q, t in enumerate(result.query_tokens)]
        custom = [[[queries[q], int(p), keys[p]] for p in positions[q].tolist()]
                  for q in range(values.shape[0])]
        z = values
        if mode == "softmax":  # colour by log10, hover the weight itself
            z = torch.log10(values.clamp_min(SOFTMAX_FLOOR))
        fig.add_trace(go.Heatmap(
            z=z.tolist(), x=[b * width + (width - 1) / 2 for b in range(values.shape[1])],
            coloraxis="coloraxis", customdata=custom, hoverongaps=False,
            text=[[f"{v:.4f}" for v in r] for r in values.tolist()],
            hovertemplate=("%{customdata[0]}<br>→ pos %{customdata[1]}: %{customdata[2]}<br>"
                           "value %{text}<extra></extra>")), row=row, col=1)
        fig.update_yaxes(tickvals=list(range(values.shape[0])),
                         ticktext=[token_label(t, 10) for t in result.query_tokens],
                         autorange="reversed", row=row, col=1)
    first = results[labels[0]].run.layout
    # Chunk starts as long ticks on every panel, not lines: a line would hide the one-column
    # sink it marks. At most MAX_TICKS of them carry a label.
    starts = [s.start for s in first.chunks]
    every = max(1, math.ceil(len(starts) / MAX_TICKS))
    fig.update_xaxes(tickvals=starts, showticklabels=True, showgrid=False,
                     ticktext=[f"C{n}" if (n - 1) % every == 0 else ""
                               for n in range(1, len(starts) + 1)],
                     ticks="outside", ticklen=10, tickwidth=2, tickcolor="#212529")
    pooled = f"; max of {width} per column" if width > 1 else ""
    fig.update_xaxes(title_text=f"context position (C = chunk start{pooled})", row=len(labels),
                     col=1)
    fig.update_layout(coloraxis=colours)
    where = f"layer {layer}" if layer is not None else "all layers"
    who = f"head {head}" if head is not None else "all heads"
    return styled(fig, f"Attention · {where} · {who}", 120 + 190 * len(labels))


def sink_mass_bars(results: Mapping[str, InspectResult], k: int, layer: int | None = None,
                   head: int | None = None) -> go.Figure:
    """Grouped bars: attention mass on each chunk's first `k` tokens, one colour per run.

    A false sink shows as a tall bar at every chunk start under naive linking.
    """
    if not results:
        return empty_figure("Inspect a request to see the attention mass on chunk starts.")
    fig = go.Figure()
    composed = next(iter(results.values())).run.layout
    for label, result in results.items():
        chunks = result.run.layout.chunks  # numbered as composed: a reordered run's bars align
        names = [f"C{n}" for n in chunk_numbers(result.run.layout, composed)]
        fig.add_trace(go.Bar(
            x=names, y=result.sink_mass(k, layer, head), name=plot_text(label),
            marker_color=algorithm_color(label), customdata=[short(c.title, 40) for c in chunks],
            hovertemplate=f"<b>{plot_text(label)}</b><br>%{{x}}: %{{customdata}}<br>"
                          "mass %{y:.3f}<extra></extra>"))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="attention mass", rangemode="tozero")
    fig.update_xaxes(title_text="chunk")
    where = f"layer {layer}" if layer is not None else "all layers"
    return styled(fig, f"Mass on chunks' first {k} tokens · {where}", 320)
