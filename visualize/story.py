"""The guided story in one picture: one question over the same documents under 2 prefixes x 2
orders. Prefix caching reuses only an identical token prefix, so it reuses almost nothing
once the prefix or the order changes; LegoLink reuses every chunk wherever it sits, compiled
once, and answers sooner.

`story` is the plain dict app/story.py builds (and keeps as JSON): {"requests": [{"name",
"compiled", "hits", "runs": {label: {"tokens_reused", "ttft_ms", ...}}, ...}], "device"}.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from visualize.style import algorithm_color, empty_figure, plot_text, styled


def story_figure(story: dict[str, Any] | None) -> go.Figure:
    """Three panels over the requests: tokens reused and TTFT per algorithm (bars), and the
    story chunks' compile passes and hits so far (lines)."""
    requests = (story or {}).get("requests") or []
    if not requests:
        return empty_figure("Run the story to see reuse across prefixes and orders.")
    names = [plot_text(r["name"]) for r in requests]
    labels = list(requests[0]["runs"])
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.11,
                        subplot_titles=("prompt tokens reused from a cache",
                                        "time to first token (ms)",
                                        "story chunks: compile passes and hits"))
    for label in labels:
        colour = algorithm_color(label)
        for row, key in ((1, "tokens_reused"), (2, "ttft_ms")):
            values = [r["runs"][label][key] for r in requests]
            fig.add_trace(go.Bar(
                x=names, y=values, name=plot_text(label), legendgroup=label,
                showlegend=row == 1, marker_color=colour,
                text=[f"{v:.0f}" for v in values], textposition="outside", cliponaxis=False,
                hovertemplate=f"<b>{plot_text(label)}</b><br>%{{x}}: %{{y:.0f}}<extra></extra>"),
                row=row, col=1)
    compiles, total = [], 0
    for r in requests:
        total += r["compiled"]
        compiles.append(total + story.get("compiled_before", 0))
    for name, values, dash in (("compile passes", compiles, "dot"),
                               ("chunk hits", [r["hits"] for r in requests], "solid")):
        fig.add_trace(go.Scatter(x=names, y=values, name=name, mode="lines+markers+text",
                                 text=[str(v) for v in values], textposition="top center",
                                 line=dict(color="#495057", dash=dash), cliponaxis=False),
                      row=3, col=1)
    fig.update_layout(barmode="group")
    # Headroom above the tallest bar and point, so that their labels stay clear of the titles.
    for row, key in ((1, "tokens_reused"), (2, "ttft_ms")):
        top = max(r["runs"][label][key] for r in requests for label in labels)
        fig.update_yaxes(range=[0, 1.3 * top or 1], row=row, col=1)
    fig.update_yaxes(range=[0, 1.3 * max(compiles + [r["hits"] for r in requests]) or 1],
                     row=3, col=1)
    return styled(fig, f"One question, 2 prefixes × 2 orders · {story.get('device', '')}", 620)
