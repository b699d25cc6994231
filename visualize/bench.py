"""Benchmark figures from the dicts of bench.accuracy.run_accuracy and bench.speed.run_speed:
quality against cost, and cost against context length."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualize.style import algorithm_color, empty_figure, family, plot_text, styled

DASHES = ("solid", "dash", "dot", "dashdot")  # a second setting of one algorithm is dashed


def score_vs_ttft(accuracy: dict[str, Any]) -> go.Figure:
    """Two panels, one point per algorithm, against median TTFT (log scale): the task score
    (left) and the first-token KL from full recompute (right; lower is more faithful)."""
    rows = accuracy.get("algorithms") or {}
    if not rows:
        return empty_figure("Run the accuracy benchmark to see score against TTFT.")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14, subplot_titles=(
        "score (up and left is better)", "KL from full (down and left)"))
    # One trace per algorithm, named in the legend: labels written beside the points would
    # overlap where algorithms cost about the same.
    for label, row in rows.items():
        for col, key, name in ((1, "score", "score"), (2, "first_token_kl", "first-token KL")):
            fig.add_trace(go.Scatter(
                x=[row["ttft_ms_median"]], y=[row[key]], mode="markers", name=plot_text(label),
                legendgroup=label, showlegend=col == 1, cliponaxis=False,
                marker=dict(size=14, color=algorithm_color(label),
                            line=dict(width=1, color="white")),
                customdata=[[row["agreement"], row["recompute_share"]]],
                hovertemplate=(f"<b>{plot_text(label)}</b><br>median TTFT %{{x:.0f}} ms<br>"
                               f"{name} %{{y:.3f}}<br>answers equal to full recompute "
                               "%{customdata[0]:.0%}<br>recomputed %{customdata[1]:.0%} of "
                               "cached<extra></extra>")), row=1, col=col)
    for col, name in ((1, "score"), (2, "first-token KL")):
        fig.update_xaxes(title_text="median TTFT (ms)", type="log", row=1, col=col)
        fig.update_yaxes(title_text=name, rangemode="tozero", row=1, col=col)
    title = (f"{accuracy.get('dataset', '')} · n={accuracy.get('n', '?')} · "
             f"{accuracy.get('device', '')}")
    return styled(fig, title, 380)


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
    # Ticks at the measured lengths only (one length would otherwise get ticks at .5).
    fig.update_xaxes(title_text="context tokens", tickvals=x, ticktext=[f"{v:.0f}" for v in x])
    fig.update_yaxes(title_text="median TTFT (ms)", type="log")
    return styled(fig, f"TTFT vs context length · {speed.get('device', '')}", 380)
