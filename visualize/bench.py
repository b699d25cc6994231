"""Benchmark figures from the dicts of bench.accuracy.run_accuracy and bench.speed.run_speed:
quality against cost, and cost against context length."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualize.notes import noise_note, zero_score_note
from visualize.style import PLOT_PX, algorithm_color, empty_figure, family, plot_text, styled
from visualize.ticks import log_axis, tick_text

DASHES = ("solid", "dash", "dot", "dashdot")  # a second setting of one algorithm is dashed
SCORE_PLOT_PX = 480  # score_vs_ttft's two panels and the gap between them
PANEL_GAP_PX = 60  # room for the upper panel's ticks and the lower one's title


def score_vs_ttft(accuracy: dict[str, Any]) -> go.Figure:
    """Two panels, one above the other (side by side they do not fit a phone), one point per
    algorithm, against median TTFT (log scale): the task score (top) and the first-token KL
    from full recompute (below; lower is more faithful)."""
    rows = accuracy.get("algorithms") or {}
    if not rows:
        return empty_figure("Run the accuracy benchmark to see score against TTFT.")
    fig = make_subplots(rows=2, cols=1, vertical_spacing=PANEL_GAP_PX / SCORE_PLOT_PX,
                        subplot_titles=("task score (higher is better)",
                                        "KL from full (lower is better)"))
    fig.update_annotations(font_size=13)
    # One trace per algorithm, named in the legend: labels written beside the points would
    # overlap where algorithms cost about the same.
    for label, row in rows.items():
        for panel, key, name in ((1, "score", "score"), (2, "first_token_kl", "first-token KL")):
            fig.add_trace(go.Scatter(
                x=[row["ttft_ms_median"]], y=[row[key]], mode="markers", name=plot_text(label),
                legendgroup=label, showlegend=panel == 1, cliponaxis=False,
                marker=dict(size=14, color=algorithm_color(label),
                            line=dict(width=1, color="white")),
                customdata=[[row["agreement"], row["recompute_share"]]],
                hovertemplate=(f"<b>{plot_text(label)}</b><br>median TTFT %{{x:.0f}} ms<br>"
                               f"{name} %{{y:.3f}}<br>answers equal to full recompute "
                               "%{customdata[0]:.0%}<br>recomputed %{customdata[1]:.0%} of "
                               "cached<extra></extra>")), row=panel, col=1)
    axis = log_axis(row["ttft_ms_median"] for row in rows.values())
    for panel, name in ((1, "score"), (2, "first-token KL")):
        fig.update_xaxes(title_text="median TTFT (ms)" if panel == 2 else None, row=panel,
                         col=1, **axis)
        fig.update_yaxes(title_text=name, rangemode="tozero", row=panel, col=1)
    title = (f"{accuracy.get('dataset', '')} · n={accuracy.get('n', '?')} · "
             f"{accuracy.get('device', '')}")
    return styled(fig, title, SCORE_PLOT_PX + PLOT_PX, notes=[zero_score_note(rows)])


def ttft_vs_length(speed: dict[str, Any]) -> go.Figure:
    """Median TTFT against linked context length, one line per algorithm (log scale), with
    Hugging Face's own prefill dotted for scale."""
    sweep = speed.get("sweep") or {}
    if not sweep:
        return empty_figure("Run the speed sweep to see TTFT against context length.")
    blocks = list(sweep.values())
    x = [b["context_tokens"] for b in blocks]
    fig = go.Figure()
    settings: dict[str, int] = {}  # per algorithm, its settings drawn so far
    for label in blocks[0]["algorithms"]:
        name = family(label)
        dash = DASHES[settings.get(name, 0) % len(DASHES)]
        settings[name] = settings.get(name, 0) + 1
        fig.add_trace(go.Scatter(
            x=x, y=[b["algorithms"][label]["ttft_ms_median"] for b in blocks],
            mode="lines+markers", name=plot_text(label),
            line=dict(color=algorithm_color(label), width=2.5, dash=dash),
            hovertemplate=f"<b>{plot_text(label)}</b><br>%{{x:.0f}} tokens: %{{y:.0f}} ms"
                          "<extra></extra>"))
    # Markers too, so that a sweep of one length still shows this reference.
    fig.add_trace(go.Scatter(x=x, y=[b["hf_prefill_ms_median"] for b in blocks],
                             mode="lines+markers", name="HF prefill",
                             line=dict(dash="dot", color="#868e96")))
    # Ticks at the measured lengths only (one length would otherwise get ticks at .5), each
    # with the length asked for under it when the prompt came out otherwise (whole chunks and
    # the fixed parts rarely add up to it); a log axis spaces the doubling lengths evenly.
    fig.update_xaxes(title_text="context tokens: measured (asked)", type="log", tickvals=x,
                     ticktext=[length_text(v, asked) for v, asked in zip(x, sweep, strict=True)],
                     range=[math.log10(min(x)) - 0.12, math.log10(max(x)) + 0.12])
    times = [b["algorithms"][label]["ttft_ms_median"] for b in blocks for label in b["algorithms"]]
    times += [b["hf_prefill_ms_median"] for b in blocks]
    fig.update_yaxes(title_text="median TTFT (ms)", **log_axis(times))
    return styled(fig, f"TTFT vs context length · {speed.get('device', '')}", 380,
                  notes=[noise_note(speed.get("repeats"))])


def length_text(measured: float, asked: str) -> str:
    """A length's tick: as measured, with the length asked for under it where they differ."""
    text = tick_text(measured)
    return text if str(round(measured)) == asked else f"{text}<br>({asked})"
