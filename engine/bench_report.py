"""Benchmark results to files: strict JSON, CSV, and standalone Plotly HTML figures.

Plotly is imported inside the figure writers only: the engine must import without it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

ACCURACY_COLUMNS = ("algorithm", "score", "agreement", "first_token_agreement",
                    "first_token_kl", "ttft_ms_mean", "ttft_ms_median", "recompute_share",
                    "reused_tokens_mean", "gather_ms_median", "forward_ms_median")


def _finite(value: Any) -> Any:
    """NaN and infinities -> None, recursively, so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(result), indent=2, allow_nan=False) + "\n")
    return path


def write_accuracy_csv(result: dict[str, Any], path: str | Path) -> Path:
    """One row per algorithm, the columns of ACCURACY_COLUMNS."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ACCURACY_COLUMNS)
        for label, row in result["algorithms"].items():
            writer.writerow([label] + [f"{row[c]:.6g}" for c in ACCURACY_COLUMNS[1:]])
    return path


def write_accuracy_html(result: dict[str, Any], path: str | Path) -> Path:
    """Task score and agreement with full recompute against median TTFT, one point per
    algorithm (the shape of EPIC's Figure 1, right), as a standalone HTML file."""
    from plotly.subplots import make_subplots

    rows = result["algorithms"]
    labels = list(rows)
    ttft = [rows[a]["ttft_ms_median"] for a in labels]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "task score vs TTFT", "agreement with full recompute vs TTFT"))
    for col, key, name in ((1, "score", "score"), (2, "agreement", "agreement")):
        fig.add_scatter(x=ttft, y=[rows[a][key] for a in labels], text=labels,
                        mode="markers+text", textposition="top center", name=name,
                        marker={"size": 12}, row=1, col=col,
                        customdata=[rows[a]["first_token_kl"] for a in labels],
                        hovertemplate="%{text}<br>TTFT %{x:.0f} ms<br>" + name
                        + " %{y:.3f}<br>first-token KL %{customdata:.3f}<extra></extra>")
        fig.update_xaxes(title_text="median TTFT (ms)", type="log", row=1, col=col)
        fig.update_yaxes(title_text=name, row=1, col=col)
    note = f" — {result['chunks_note']}" if result.get("chunks_note") else ""
    fig.update_layout(title=f"{result['dataset']} ({result['task']}), n={result['n']}, "
                            f"{result['model']} on {result['device']}{note}",
                      showlegend=False, template="plotly_white")
    return _write_html(fig, path)


def write_speed_html(result: dict[str, Any], path: str | Path) -> Path:
    """TTFT against context length per algorithm (log scale) and the throughput bars."""
    from plotly.subplots import make_subplots

    sweep = result["sweep"]
    labels = list(next(iter(sweep.values()))["algorithms"])
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "median TTFT vs context length", "request-stream throughput"))
    x = [v["context_tokens"] for v in sweep.values()]
    for label in labels:
        fig.add_scatter(x=x, y=[v["algorithms"][label]["ttft_ms_median"] for v in sweep.values()],
                        mode="lines+markers", name=label, row=1, col=1)
    fig.add_scatter(x=x, y=[v["hf_prefill_ms_median"] for v in sweep.values()],
                    mode="lines", name="HF prefill", line={"dash": "dot"}, row=1, col=1)
    rps = result["throughput"]["algorithms"]
    fig.add_bar(x=list(rps), y=[v["requests_per_s"] for v in rps.values()], showlegend=False,
                row=1, col=2)
    fig.update_xaxes(title_text="context tokens", row=1, col=1)
    fig.update_yaxes(title_text="TTFT (ms)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="requests / s", row=1, col=2)
    fig.update_layout(title=f"{result['model']} on {result['device']} ({result['dtype']})",
                      template="plotly_white")
    return _write_html(fig, path)


def _write_html(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The plotly.js bundle inline: the file opens offline, with nothing fetched.
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
