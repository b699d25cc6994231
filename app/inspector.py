"""Inspect tab handlers: attention maps of the answer tokens per algorithm, and sink mass.

The model runs once per algorithm, full recompute included (the reference of the difference
view and of the summary), in `inspect_attention`; the scores are kept for the visitor (in
fp16, under one byte budget for all visitors), so that changing the layer, head, view or sink
window only redraws them (`render_attention`), without a model call.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from app import notes
from app.budget import Estimate
from app.compose import prompt_tokens_text, retitled
from app.errors import user_errors
from app.lab import Lab
from app.planning import plan_runs
from engine import NAIVE, REFERENCE, InspectResult, whole_number
from visualize.attention import MODES, attention_heatmaps, sink_mass_bars

INSPECT_TOKENS = 8  # query rows: the last prompt token and up to 7 answer tokens
# What the tab shows first: the false sinks of linking without correction, and EPIC's fix.
DEFAULT_ALGORITHMS = (NAIVE, "legolink")
MODE_CHOICES = [("min-max QKᵀ (as in the paper)", "minmax"), ("softmax (log scale)", "softmax"),
                ("minus full recompute", "difference")]
MAX_SINK_TOKENS = 32
ROWS = ("Rows: the last prompt token, then each algorithm's own first answer tokens (they "
        "differ where the answers differ).")


@dataclass(frozen=True)
class Inspection:
    """The scores of one inspected request, kept to redraw: the shown algorithms' and full
    recompute's, and the prompt's tokens."""

    results: dict[str, InspectResult]
    reference: InspectResult
    key_tokens: list[str]

    @property
    def num_bytes(self) -> int:
        scores = [r.scores for r in (*self.results.values(), self.reference)]
        return sum(s.numel() * s.element_size() for s in scores)


def _view(inspection: Inspection, layer: Any, all_layers: bool, head: Any, all_heads: bool,
          mode: str, sink_tokens: Any) -> tuple[go.Figure, go.Figure, str]:
    num_layers, num_heads = inspection.reference.scores.shape[:2]
    chosen_layer = None if all_layers else whole_number(layer, "layer", 0, num_layers - 1)
    chosen_head = None if all_heads else whole_number(head, "head", 0, num_heads - 1)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    k = whole_number(sink_tokens, "sink tokens", 1, MAX_SINK_TOKENS)
    heatmap = attention_heatmaps(inspection.results, chosen_layer, chosen_head, mode,
                                 inspection.key_tokens, inspection.reference)
    bars = sink_mass_bars(inspection.results, k, chosen_layer, chosen_head)
    return heatmap, bars, summary(inspection, k, chosen_layer, chosen_head)


def _false_sink_mass(result: InspectResult, k: int, layer: int | None,
                     head: int | None) -> float | None:
    """Mean mass on the first k tokens of the chunks that do not open the prompt (a chunk at
    position 0 holds the prompt's one true sink); None when there is no such chunk."""
    masses = [m for m, seg in zip(result.sink_mass(k, layer, head),
                                  result.run.layout.chunks, strict=True) if seg.start != 0]
    return sum(masses) / len(masses) if masses else None


def summary(inspection: Inspection, k: int, layer: int | None, head: int | None) -> str:
    """What the shown numbers say, computed from them: each algorithm's attention mass on the
    chunk starts against full recompute's, at the layer and head shown."""
    where = (f"layer {layer}" if layer is not None else "all layers") + ", " + (
        f"head {head}" if head is not None else "all heads")
    ref = _false_sink_mass(inspection.reference, k, layer, head)
    if ref is None:
        return "Only one chunk, at the prompt's start: there is no false sink to compare."
    masses = {label: _false_sink_mass(r, k, layer, head)
              for label, r in inspection.results.items()}
    numbers = " · ".join(f"**{label}** {m:.3f}" for label, m in masses.items()
                         if label != REFERENCE)
    text = (f"Mean attention on the first {k} tokens of each chunk not at position 0 ({where}): "
            f"{numbers + ' · ' if numbers else ''}full recompute {ref:.3f}.")
    naive = masses.get(NAIVE)
    if naive is not None:
        excess = naive - ref
        if excess > max(0.01, 0.5 * ref):
            text += (f" Naive linking puts {excess:.3f} more attention there than full "
                     "recompute: the false sinks.")
            for label, m in masses.items():
                if label not in (NAIVE, REFERENCE):
                    removed = min(max(1 - (m - ref) / excess, 0.0), 1.0)
                    text += f" {label} removes {removed:.0%} of that excess."
        else:
            text += (f" Here naive linking puts about as much attention on the chunk starts as "
                     f"full recompute ({naive:.3f} vs {ref:.3f}): no false sink stands out at "
                     f"{where}.")
    moved = notes.reorderings([inspection.reference.run,
                               *(r.run for r in inspection.results.values())])
    return "  \n".join([text, *moved, ROWS])


@user_errors
def inspect_attention(lab: Lab, session: str, prefix: str, chunks: list[str], question: str,
                      algorithms: list[str], k: float, ratio: float, layer: float,
                      all_layers: bool, head: float, all_heads: bool, mode: str,
                      sink_tokens: float, **knobs: float) -> tuple[go.Figure, go.Figure, str]:
    """Run the request under each algorithm (and full recompute, the reference) and draw the
    attention of its answer tokens -> (heatmaps, sink-mass bars, summary)."""
    plan = plan_runs(lab, session, prefix, chunks, question, algorithms,
                     {"k": k, "ratio": ratio, **knobs}, INSPECT_TOKENS, inspect=True,
                     ensure=True)
    chosen, titles = set(algorithms or []), lab.titles(session)
    results: dict[str, InspectResult] = {}
    reference = None
    with lab.estimator.timed(lab.admission.within_budget(plan.estimate)):
        for request in plan.requests:
            result = lab.engine.inspect_request(request)
            result = replace(result, run=retitled(result.run, titles),
                             scores=result.scores.half())  # half the memory, enough to draw
            reference = reference or result
            if request.algorithm.name != REFERENCE or REFERENCE in chosen:  # it runs anyway
                results[result.run.algorithm] = result
        inspection = Inspection(results, reference, prompt_tokens_text(lab, reference.run))
    heatmaps, bars, summary = _view(inspection, layer, all_layers, head, all_heads, mode,
                                    sink_tokens)
    if not lab.libraries.keep_inspection(session, inspection, inspection.num_bytes):
        summary += ("  \n*These scores are not kept for redraws (the server's room for them "
                    "is taken): another layer, head or view needs **Inspect attention** "
                    "again.*")
    return heatmaps, bars, summary


def estimate_inspect(lab: Lab, session: str, prefix: Any, chunks: Any, question: Any,
                     algorithms: Any, k: Any, ratio: Any, layer: Any = None,
                     all_layers: Any = None, head: Any = None, all_heads: Any = None,
                     mode: Any = None, sink_tokens: Any = None, **knobs: Any) -> Estimate:
    """What `inspect_attention` with these inputs will cost (checked when it is queued)."""
    return plan_runs(lab, session, prefix, chunks, question, algorithms,
                     {"k": k, "ratio": ratio, **knobs}, INSPECT_TOKENS, inspect=True).estimate


@user_errors
def render_attention(lab: Lab, session: str, layer: float, all_layers: bool, head: float,
                     all_heads: bool, mode: str, sink_tokens: float) -> tuple:
    """Redraw the visitor's kept scores for another layer, head, view or sink window (no model
    call); with none kept (none yet, or dropped to save memory) the figures stay."""
    inspection = lab.libraries.get(session).inspection
    if inspection is None:
        return gr.skip(), gr.skip(), ("*Press **Inspect attention** to draw the maps: no "
                                      "scores are kept for this page.*")
    return _view(inspection, layer, all_layers, head, all_heads, mode, sink_tokens)
