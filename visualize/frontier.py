"""The fidelity-cost frontier from bench.frontier.run_frontier's dict: first-token KL from full
recompute against median TTFT, one point per algorithm setting, one panel per context length."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualize.style import algorithm_color, empty_figure, family, setting, styled


def frontier_figure(frontier: dict[str, Any]) -> go.Figure:
    """One panel per context length: each algorithm's settings as points joined in order of
    their parameter (legolink-2 .. legolink-32), KL against median TTFT (log scale); down and
    left is better. full_recompute sits at KL 0, the reference."""
    blocks = frontier.get("lengths") or {}
    if not blocks:
        return empty_figure("Run the frontier benchmark to see first-token KL against TTFT.")
    titles = [(f"{b['title']} · " if b.get("title") else "") +
              f"{b['num_chunks']} chunks · {b['context_tokens_mean']:.0f} tokens · n={b['n']}"
              for b in blocks.values()]
    fig = make_subplots(rows=1, cols=len(blocks), subplot_titles=titles,
                        horizontal_spacing=0.08)
    shown: set[str] = set()
    for col, block in enumerate(blocks.values(), 1):
        for name, labels in _families(block["algorithms"]).items():
            rows = [block["algorithms"][label] for label in labels]
            fig.add_trace(go.Scatter(
                x=[r["ttft_ms_median"] for r in rows], y=[r["first_token_kl"] for r in rows],
                text=labels, mode="lines+markers+text", textposition="top center",
                name=name, legendgroup=name, showlegend=name not in shown, cliponaxis=False,
                line=dict(color=algorithm_color(name), width=2),
                marker=dict(size=11, color=algorithm_color(name),
                            line=dict(width=1, color="white")),
                customdata=[[r["agreement"], r["recompute_share"], r["score"]] for r in rows],
                hovertemplate=("<b>%{text}</b><br>median TTFT %{x:.0f} ms<br>first-token KL "
                               "%{y:.4f}<br>answers equal to full recompute "
                               "%{customdata[0]:.0%}<br>recomputed %{customdata[1]:.1%} of "
                               "cached<br>task score %{customdata[2]:.3f}<extra></extra>")),
                row=1, col=col)
            shown.add(name)
        fig.update_xaxes(title_text="median TTFT (ms)", type="log", row=1, col=col)
        fig.update_yaxes(title_text="first-token KL (nats)" if col == 1 else None,
                         rangemode="tozero", row=1, col=col)
    title = (f"Fidelity vs cost · {frontier.get('dataset', '')} · {frontier.get('model', '')} "
             f"· {frontier.get('device', '')}")
    return styled(fig, title, 420)


def _families(rows: dict[str, dict[str, float]]) -> dict[str, list[str]]:
    """Labels grouped by algorithm name, each group in order of its parameter."""
    families: dict[str, list[str]] = {}
    for label in rows:
        families.setdefault(family(label), []).append(label)
    return {name: sorted(labels, key=setting) for name, labels in families.items()}
