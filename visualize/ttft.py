"""Time to first token per algorithm, as bars: what each way of linking costs."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from engine import REFERENCE, RunResult
from visualize.style import algorithm_color, empty_figure, plot_text, styled


def ttft_bars(results: Sequence[RunResult]) -> go.Figure:
    """One bar per run: TTFT in ms, labelled with its speed-up over full recompute.

    Hover shows the prompt tokens computed (new + recomputed) and the link phases' times.
    """
    if not results:
        return empty_figure("Run a comparison to see the time to first token.")
    reference = next((r.ttft_ms for r in results if r.algorithm == REFERENCE), None)
    labels = [r.algorithm for r in results]
    texts = []
    for r in results:
        text = f"{r.ttft_ms:.0f} ms"
        if reference is not None and r.algorithm != REFERENCE and r.ttft_ms > 0:
            text += f" · {reference / r.ttft_ms:.1f}×"
        texts.append(text)
    custom = [[r.num_recomputed, r.num_prompt_tokens, r.timings_ms.get("gather_ms", 0.0),
               r.timings_ms.get("forward_ms", 0.0)] for r in results]
    fig = go.Figure(go.Bar(
        x=[plot_text(label) for label in labels], y=[r.ttft_ms for r in results], text=texts,
        textposition="outside",
        marker_color=[algorithm_color(label) for label in labels], customdata=custom,
        hovertemplate=("<b>%{x}</b><br>TTFT %{y:.1f} ms<br>computed %{customdata[0]} of "
                       "%{customdata[1]} prompt tokens<br>gather %{customdata[2]:.1f} ms · "
                       "forward %{customdata[3]:.1f} ms<extra></extra>")))
    fig.update_yaxes(title_text="TTFT (ms)", rangemode="tozero")
    # Headroom so the labels above the tallest bar are not clipped.
    fig.update_yaxes(range=[0, max(r.ttft_ms for r in results) * 1.2])
    title = "TTFT" + (" (× = speed-up over full recompute)" if reference else "")
    return styled(fig, title, 320)
