"""Benchmark figures from the dicts of bench.accuracy.run_accuracy and bench.speed.run_speed:
quality against cost, and cost against context length."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualize.style import algorithm_color, empty_figure, styled


def score_vs_ttft(accuracy: dict[str, Any]) -> go.Figure:
    """Two panels, one point per algorithm, against median TTFT (log scale): the task score
    (left) and the first-token KL from full recompute (right; lower is more faithful)."""
    rows = accuracy.get("algorithms") or {}
    if not rows:
        return empty_figure("Run the accuracy benchmark to see score against TTFT.")
    labels = list(rows)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "task score vs TTFT (up and left is better)",
        "first-token KL from full recompute vs TTFT (down and left is better)"))
    ttft = [rows[a]["ttft_ms_median"] for a in labels]
    for col, key, name in ((1, "score", "score"), (2, "first_token_kl", "first-token KL")):
        fig.add_trace(go.Scatter(
            x=ttft, y=[rows[a][key] for a in labels], text=labels, mode="markers+text",
            textposition="top center", showlegend=False, cliponaxis=False,
            marker=dict(size=14, color=[algorithm_color(a) for a in labels],
                        line=dict(width=1, color="white")),
            customdata=[[rows[a]["agreement"], rows[a]["recompute_share"]] for a in labels],
            hovertemplate=("<b>%{text}</b><br>median TTFT %{x:.0f} ms<br>" + name
                           + " %{y:.3f}<br>answers equal to full recompute "
                           "%{customdata[0]:.0%}<br>recomputed %{customdata[1]:.0%} of cached"
                           "<extra></extra>")), row=1, col=col)
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
    for label in blocks[0]["algorithms"]:
        fig.add_trace(go.Scatter(
            x=x, y=[b["algorithms"][label]["ttft_ms_median"] for b in blocks],
            mode="lines+markers", name=label, line=dict(color=algorithm_color(label), width=2.5),
            hovertemplate=f"<b>{label}</b><br>%{{x:.0f}} tokens: %{{y:.0f}} ms<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=[b["hf_prefill_ms_median"] for b in blocks],
                             mode="lines", name="HF prefill", line=dict(dash="dot",
                             color="#868e96")))
    fig.update_xaxes(title_text="context tokens")
    fig.update_yaxes(title_text="median TTFT (ms)", type="log")
    return styled(fig, f"TTFT vs context length · {speed.get('device', '')}", 380)
