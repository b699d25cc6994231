"""Benchmark results to files: strict JSON, CSV, and standalone HTML figures (drawn by
visualize/, the same figures as the app's Benchmark tab)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from visualize.bench import score_vs_ttft, ttft_vs_length
from visualize.frontier import frontier_figure

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
    """Task score and first-token KL against median TTFT, one point per algorithm (the
    Benchmark tab's figure), as a standalone HTML file."""
    return _write_html(score_vs_ttft(result), path)


def write_speed_html(result: dict[str, Any], path: str | Path) -> Path:
    """Median TTFT against context length per algorithm (the Benchmark tab's figure)."""
    return _write_html(ttft_vs_length(result), path)


def write_frontier_html(result: dict[str, Any], path: str | Path) -> Path:
    """First-token KL against median TTFT per setting, a panel per context length."""
    return _write_html(frontier_figure(result), path)


def _write_html(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The plotly.js bundle inline: the file opens offline, with nothing fetched.
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
