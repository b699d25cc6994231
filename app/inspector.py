"""Inspect tab handlers: attention maps of the answer tokens per algorithm, and sink mass.

The model runs once per algorithm (`inspect_attention`); changing the layer, head or mode
only redraws from the kept scores (`render_attention`), without a model call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from app.compose import make_requests, prompt_tokens
from app.errors import user_errors
from engine import Engine
from engine.algorithms import REFERENCE
from engine.inspection import InspectResult
from engine.request import whole_number
from visualize.attention import MODES, attention_heatmaps, sink_mass_bars

INSPECT_TOKENS = 8  # query rows: the last prompt token and up to 7 answer tokens
DEFAULT_ALGORITHMS = ("naive", "legolink")


@dataclass(frozen=True)
class Inspection:
    """The scores of one inspected request, per algorithm label, kept to redraw."""

    results: dict[str, InspectResult]
    key_tokens: list[str]


def _view(inspection: Inspection, layer: Any, all_layers: bool, head: Any, all_heads: bool,
          mode: str, sink_tokens: Any) -> tuple[go.Figure, go.Figure, str]:
    first = next(iter(inspection.results.values()))
    num_layers, num_heads = first.scores.shape[:2]
    chosen_layer = None if all_layers else whole_number(layer, "layer", 0, num_layers - 1)
    chosen_head = None if all_heads else whole_number(head, "head", 0, num_heads - 1)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    k = whole_number(sink_tokens, "sink tokens", 1, 256)
    heatmap = attention_heatmaps(inspection.results, chosen_layer, chosen_head, mode,
                                 inspection.key_tokens)
    bars = sink_mass_bars(inspection.results, k, chosen_layer)
    return heatmap, bars, _summary(inspection, k, chosen_layer)


def _summary(inspection: Inspection, k: int, layer: int | None) -> str:
    """Mean attention mass on the first k tokens of every chunk that does not open the prompt
    (those are the false sinks: a chunk at position 0 holds the prompt's one true sink)."""
    parts = []
    for label, result in inspection.results.items():
        chunks = result.run.layout.chunks
        masses = [mass for mass, seg in zip(result.sink_mass(k, layer), chunks, strict=True)
                  if seg.start != 0]
        if masses:
            parts.append(f"**{label}** {sum(masses) / len(masses):.3f}")
    if not parts:
        return "Only one chunk, at the prompt's start: there is no false sink to compare."
    return (f"Mean attention mass on the first {k} tokens of each chunk not at position 0: "
            + " · ".join(parts) + ". Naive linking leaves a false sink at each chunk start.")


@user_errors
def inspect_attention(engine: Engine, prefix: str, chunks: list[str], question: str,
                      algorithms: list[str], k: float, ratio: float, layer: float,
                      all_layers: bool, head: float, all_heads: bool, mode: str,
                      sink_tokens: float) -> tuple[go.Figure, go.Figure, str, Inspection]:
    """Run the request under each algorithm and draw the attention of its answer tokens.

    -> (heatmaps, sink-mass bars, summary, the kept scores for redrawing).
    """
    chosen = set(algorithms or [])
    results: dict[str, InspectResult] = {}
    for request in make_requests(engine, prefix, chunks, question, algorithms, k, ratio,
                                 INSPECT_TOKENS):
        if request.algorithm.name == REFERENCE and REFERENCE not in chosen:
            continue  # no reference needed here: the maps are drawn per algorithm
        result = engine.inspect_request(request)
        results[result.run.algorithm] = result
    inspection = Inspection(results, prompt_tokens(engine, next(iter(results.values())).run))
    return (*_view(inspection, layer, all_layers, head, all_heads, mode, sink_tokens), inspection)


@user_errors
def render_attention(inspection: Inspection | None, layer: float, all_layers: bool, head: float,
                     all_heads: bool, mode: str,
                     sink_tokens: float) -> tuple[go.Figure | dict, ...]:
    """Redraw kept scores for another layer, head, mode or sink window (no model call);
    before the first inspection there is nothing to redraw and every output is kept."""
    if inspection is None:
        return gr.skip(), gr.skip(), gr.skip()
    return _view(inspection, layer, all_layers, head, all_heads, mode, sink_tokens)
