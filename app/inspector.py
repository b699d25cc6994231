"""Inspect tab handlers: attention maps of the answer tokens per algorithm, and sink mass.

The model runs once per algorithm, full recompute included (the reference of the difference
view and of the summary), in `inspect_attention`; the scores are kept for the visitor (in
fp16, under one byte budget for all visitors, in its own library: no visitor is shown
another's), by the request each run answered. A request whose runs are all kept is drawn from
them without a model call (`reuse_attention`, the page's step before the model's queue, and
`inspect_attention` itself); one that adds an algorithm or a k runs only what is missing.
Changing the layer, head, view or sink window only redraws them (`render_attention`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from app import notes
from app.budget import Estimate
from app.compose import prompt_tokens_text, retitled
from app.cost import Prompt, Work, inspect_work
from app.errors import user_errors
from app.lab import Lab
from app.planning import SHRINK, make_requests
from app.render import md
from engine import NAIVE, REFERENCE, InspectResult, Layout, Request, whole_number
from visualize.attention import MODES, attention_heatmaps, sink_mass_bars

INSPECT_TOKENS = 8  # query rows: the last prompt token and up to 7 answer tokens
# What the tab shows first: the false sinks of linking without correction, and EPIC's fix.
DEFAULT_ALGORITHMS = (NAIVE, "legolink")
MODE_CHOICES = [("min-max QKᵀ (as in the paper)", "minmax"), ("softmax (log scale)", "softmax"),
                ("minus full recompute", "difference")]
MAX_SINK_TOKENS = 32
ROWS = ("Rows: the last prompt token, then each algorithm's own first answer tokens (they "
        "differ where the answers differ).")
INSTANT = ("Instant, no model call: **layer**, **head**, the averages, **Values** and the **sink "
           "window** redraw the kept attention, and so does **Inspect attention** while the "
           "request is one already inspected (fewer of its algorithms included). A new prefix, "
           "chunk order, question, algorithm or knob needs the button, which runs the model "
           "for what is not kept.")


@dataclass(frozen=True)
class Inspection:
    """One visitor's kept attention of one prompt: every run held for it, by the request it
    answered (full recompute's included; a run of the same request is reused, never another
    visitor's: a request carries its visitor's salt), the runs drawn, the prompt's tokens and
    the header naming the request and whether the model ran."""

    runs: dict[Request, InspectResult]
    reference_request: Request
    drawn: tuple[Request, ...]  # in the page's order, full recompute first when chosen
    key_tokens: list[str]
    header: str = ""

    @property
    def reference(self) -> InspectResult:
        return self.runs[self.reference_request]

    @property
    def results(self) -> dict[str, InspectResult]:
        """The drawn runs by their labels."""
        return {self.runs[r].run.algorithm: self.runs[r] for r in self.drawn}

    @property
    def num_bytes(self) -> int:
        scores = {id(r.scores): r.scores for r in self.runs.values()}
        return sum(s.numel() * s.element_size() for s in scores.values())


@dataclass(frozen=True)
class InspectPlan:
    """A checked inspection: its requests (the reference first), the runs the visitor's kept
    attention already holds, those the model must run, and the estimate of those alone."""

    requests: list[Request]
    layout: Layout
    held: dict[Request, InspectResult]
    missing: list[Request]
    estimate: Estimate


def plan_inspection(lab: Lab, session: str, prefix: Any, chunks: Any, question: Any,
                    algorithms: Any, knobs: dict[str, Any], ensure: bool = False) -> InspectPlan:
    """The inspection of these inputs (planning.make_requests) against the visitor's kept
    attention: the validator, the page's check and the handler all call this, so the call
    admitted is the call that runs."""
    requests, layout = make_requests(lab, session, prefix, chunks, question, algorithms, knobs,
                                     INSPECT_TOKENS, ensure)
    kept = lab.libraries.get(session).inspection
    runs = kept.runs if isinstance(kept, Inspection) else {}
    held = {r: runs[r] for r in requests if r in runs}
    missing = [r for r in requests if r not in held]
    prompt, layers = Prompt.of(layout), lab.engine.model.spec.num_layers
    work = sum((inspect_work(prompt, r.algorithm, layers) for r in missing), Work())
    what = (f"{len(missing)} runs of {layout.num_tokens:,} tokens, up to {INSPECT_TOKENS} new "
            "tokens each" + (f"; {len(held)} kept" if held else ""))
    return InspectPlan(requests, layout, held, missing,
                       lab.estimator.estimate("inspect", work, what, SHRINK))


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


def story_request(lab: Lab, request: Request) -> str | None:
    """The name of the guided story's request this one is ("R4: prefix 2, order 2"), if any."""
    from app.start import story_requests  # app.start imports this module's defaults

    for name, preset, chunks in story_requests(lab):
        if request.prefix == lab.presets.prefixes.get(preset) and list(request.chunks) == chunks:
            return name
    return None


def header(lab: Lab, session: str, request: Request, ran: list[Request],
           kept: list[Request]) -> str:
    """Which request the figures show (the story's or the Compose tab's; visitor strings
    escaped) and whether the model ran for them this time."""
    story = story_request(lab, request)
    which = ("the Compose tab's request" if story is None else
             "the story's request {} ({})".format(*story.split(": ", 1)))
    titles = lab.titles(session)
    names = ", ".join(md(_cut(titles.get(key, key[:8]), 40)) for key in request.chunks[:6])
    more = f", … ({len(request.chunks)} in all)" if len(request.chunks) > 6 else ""
    line = (f"**Inspecting {which}:** prefix “{md(_cut(request.prefix, 80)) or '(none)'}” · "
            f"chunks {names}{more} · question “{md(_cut(request.question, 80))}”  \n")

    def labels(requests: list[Request]) -> str:
        return ", ".join(r.algorithm.label for r in requests)
    if not ran:
        return line + ("**No model run this time:** the attention this request's last "
                       f"inspection kept ({labels(kept)}).")
    if not kept:
        return line + f"**The model ran this time:** {len(ran)} runs ({labels(ran)})."
    return line + (f"**The model ran this time** for {labels(ran)} only; {labels(kept)} from "
                   "the attention kept for this request.")


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


def _show(lab: Lab, session: str, plan: InspectPlan, algorithms: list[str] | None,
          fresh: dict[Request, InspectResult], view: tuple) -> tuple:
    """Keep the plan's runs for the visitor (with the other kept runs of the same prompt,
    while they fit) and draw them -> (heatmaps, sink-mass bars, summary, header)."""
    first = plan.requests[0]
    chosen = set(algorithms or [])
    drawn = tuple(r for r in plan.requests if r.algorithm.name != REFERENCE or REFERENCE in chosen)
    runs = {**plan.held, **fresh}
    kept = lab.libraries.get(session).inspection
    same = isinstance(kept, Inspection) and kept.reference_request == first
    tokens = kept.key_tokens if same else prompt_tokens_text(lab, runs[first].run)
    inspection = Inspection(runs, first, drawn, tokens,
                            header(lab, session, first, list(fresh), list(plan.held)))
    wider = replace(inspection, runs={**kept.runs, **runs}) if same else None
    heatmaps, bars, text = _view(inspection, *view)
    stored = wider is not None and lab.libraries.keep_inspection(session, wider, wider.num_bytes)
    if not stored and not lab.libraries.keep_inspection(session, inspection,
                                                        inspection.num_bytes):
        text += ("  \n*These scores are not kept for redraws (the server's room for them "
                 "is taken): another layer, head or view needs **Inspect attention** "
                 "again.*")
    return heatmaps, bars, text, inspection.header


@user_errors
def inspect_attention(lab: Lab, session: str, prefix: str, chunks: list[str], question: str,
                      algorithms: list[str], k: float, ratio: float, layer: float,
                      all_layers: bool, head: float, all_heads: bool, mode: str,
                      sink_tokens: float, **knobs: float) -> tuple[go.Figure, go.Figure, str, str]:
    """Run the request under each algorithm (and full recompute, the reference) and draw the
    attention of its answer tokens -> (heatmaps, sink-mass bars, summary, which request it
    is and whether the model ran). Runs this visitor's last inspections of the same request
    kept are reused, not run again."""
    plan = plan_inspection(lab, session, prefix, chunks, question, algorithms,
                           {"k": k, "ratio": ratio, **knobs}, ensure=True)
    view = (layer, all_layers, head, all_heads, mode, sink_tokens)
    titles = lab.titles(session)
    fresh: dict[Request, InspectResult] = {}
    if plan.missing:
        with lab.estimator.timed(lab.admission.within_budget(plan.estimate)):
            for request in plan.missing:
                result = lab.engine.inspect_request(request)
                fresh[request] = replace(result, run=retitled(result.run, titles),
                                         scores=result.scores.half())  # enough to draw
    return _show(lab, session, plan, algorithms, fresh, view)


@user_errors
def reuse_attention(lab: Lab, session: str, prefix: Any, chunks: Any, question: Any,
                    algorithms: Any, k: Any, ratio: Any, layer: Any, all_layers: Any, head: Any,
                    all_heads: Any, mode: Any, sink_tokens: Any, **knobs: Any) -> tuple | None:
    """The page's Inspect press, before the model's queue: a request whose runs this visitor
    has all kept is drawn from them, as `inspect_attention` would (no model call) -> its
    outputs; None when the model must run (or the inputs are refused: the check and the
    model step name why)."""
    try:
        plan = plan_inspection(lab, session, prefix, chunks, question, algorithms,
                               {"k": k, "ratio": ratio, **knobs})
    except (ValueError, KeyError, TypeError):
        return None
    if plan.missing:
        return None
    view = (layer, all_layers, head, all_heads, mode, sink_tokens)
    return _show(lab, session, plan, algorithms, {}, view)


def estimate_inspect(lab: Lab, session: str, prefix: Any, chunks: Any, question: Any,
                     algorithms: Any, k: Any, ratio: Any, layer: Any = None,
                     all_layers: Any = None, head: Any = None, all_heads: Any = None,
                     mode: Any = None, sink_tokens: Any = None, **knobs: Any) -> Estimate:
    """What `inspect_attention` with these inputs will cost: the runs not kept (checked when
    it is queued)."""
    return plan_inspection(lab, session, prefix, chunks, question, algorithms,
                           {"k": k, "ratio": ratio, **knobs}).estimate


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
