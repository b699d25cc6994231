"""Inspect tab: layout and wiring. Handlers: app/inspector.py. It inspects the Compose tab's
request (which the story's *Inspect the last request* fills): the line at its top says which,
and after a press whether the model ran.

A press first tries the visitor's kept attention, in the redraw lane (`gate`): a request whose
runs are all kept is drawn from them and the chain stops there, silently, so the model step
never joins the model's queue; otherwise the gate refuses what the queue's validator would
(`wiring.prechecked`, as every model step's page check does) and the model step runs what is
not kept.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr

from app import compose, controls
from app.controls import Choices, Radio, Slider
from app.inspector import (
    DEFAULT_ALGORITHMS,
    INSTANT,
    MAX_SINK_TOKENS,
    MODE_CHOICES,
    estimate_inspect,
    inspect_attention,
    render_attention,
    reuse_attention,
)
from app.lab import Lab
from app.ui_compose import ComposeTab
from app.wiring import REDRAW, Step, bind, prechecked, private, redraw, step
from engine import algorithm_choices
from visualize.attention import attention_heatmaps, sink_mass_bars


@dataclass
class InspectTab:
    """The Inspect tab's controls and figures."""

    request: gr.Markdown
    algorithms: gr.CheckboxGroup
    mode: gr.Radio
    sink_tokens: gr.Slider
    layer: gr.Slider
    all_layers: gr.Checkbox
    head: gr.Slider
    all_heads: gr.Checkbox
    run: gr.Button
    summary: gr.Markdown
    heatmap: gr.Plot
    sinks: gr.Plot


def build(lab: Lab, compose_tab: ComposeTab) -> InspectTab:
    """Lay out the Inspect tab (inside an open gr.Tab)."""
    spec = lab.engine.model.spec
    request = gr.Markdown(compose.request_summary(compose_tab.prefix.value, [],
                                                  compose_tab.question.value),
                          label="Request shown", elem_classes="status",
                          elem_id="inspect-request")
    with gr.Row(equal_height=True):
        algorithms = Choices(list(algorithm_choices()), value=list(DEFAULT_ALGORITHMS),
                                      label="Algorithms, side by side", scale=3,
                                      elem_id="inspect-algorithms")
        mode = Radio(MODE_CHOICES, value="minmax", label="Values", scale=2,
                        elem_id="inspect-mode")
        sink_tokens = Slider(1, MAX_SINK_TOKENS, value=4, step=1, scale=2,
                                label="sink window: first tokens of each chunk")
    with gr.Row(equal_height=True):
        layer = Slider(0, spec.num_layers - 1, value=min(2, spec.num_layers - 1), step=1,
                          label="layer", scale=3, interactive=False, elem_id="layer")
        all_layers = gr.Checkbox(True, label="average layers", scale=1, elem_id="all-layers")
        head = Slider(0, spec.num_heads - 1, value=0, step=1, label="head", scale=3,
                         interactive=False, elem_id="head")
        all_heads = gr.Checkbox(True, label="average heads", scale=1, elem_id="all-heads")
    gr.Markdown(INSTANT, elem_classes="hint", elem_id="inspect-instant")
    with gr.Row(equal_height=True):
        run = gr.Button("Inspect attention", variant="primary", scale=1, elem_id="run-inspect")
        summary = gr.Markdown(label="Sink summary", elem_classes="status", scale=4,
                              elem_id="inspect-summary")
    heatmap = gr.Plot(attention_heatmaps({}), label="Attention maps", show_label=False,
                      elem_id="heatmap-plot")
    sinks = gr.Plot(sink_mass_bars({}, 4), label="Sink mass", show_label=False,
                    elem_id="sinks-plot")
    return InspectTab(request, algorithms, mode, sink_tokens, layer, all_layers, head,
                      all_heads, run, summary, heatmap, sinks)


def gate(lab: Lab) -> Callable[..., Any]:
    """The page's step before Inspect's model step (same inputs), in the redraw lane: the
    kept attention drawn and the chain stopped when it holds every run (a hidden error: the
    steps after it, the model's included, follow a success only), else the model step's
    page check."""
    reused = bind(lab, controls.with_knobs(reuse_attention))
    checked = prechecked(lab, controls.with_knobs(inspect_attention),
                         controls.with_knobs(estimate_inspect))

    @functools.wraps(checked)
    def reuse_or_check(*args: Any, **kwargs: Any) -> Any:
        shown = reused(*args, **kwargs)
        if shown is not None:
            yield shown
            raise gr.Error("kept attention drawn: no model call", visible=False,
                           print_exception=False)
        checked(*args, **kwargs)
        yield (gr.skip(),) * 4
    reuse_or_check.__name__ = reuse_or_check.__qualname__ = "reuse_or_check_inspect"
    return reuse_or_check


def inspect_step(lab: Lab, c: ComposeTab, i: InspectTab, api_name: str | None) -> Step:
    """The model call of the Inspect tab (on its button, or after another tab's), preceded by
    its `gate`: a request already inspected is drawn without joining the model's queue."""
    inputs = [*c.request, i.algorithms, c.knobs["k"], c.knobs["ratio"], i.layer, i.all_layers,
              i.head, i.all_heads, i.mode, i.sink_tokens, *controls.appended(c.knobs)]
    outputs = [i.heatmap, i.sinks, i.summary, i.request]
    model = step(lab, controls.with_knobs(inspect_attention), inputs, outputs, api_name,
                 model=True, estimate=controls.with_knobs(estimate_inspect))
    first = Step(gate(lab), inputs, outputs,
                 options={"concurrency_id": REDRAW, "concurrency_limit": lab.limits.redraws,
                          "show_progress": "hidden"})
    return replace(model, pre=first)


def wire(lab: Lab, c: ComposeTab, i: InspectTab, guard: object, after: Step) -> None:
    """Attach the Inspect events; `after` (the library refresh) follows the model call."""
    guard.chain(i.run.click, [inspect_step(lab, c, i, "inspect"), after])
    view_in = [i.layer, i.all_layers, i.head, i.all_heads, i.mode, i.sink_tokens]
    view_out = [i.heatmap, i.sinks, i.summary]
    drawn = bind(lab, render_attention)
    for event in (i.layer.release, i.head.release, i.all_layers.change, i.all_heads.change,
                  i.mode.change, i.sink_tokens.release):
        redraw(lab, event, drawn, view_in, view_out)
    # A slider that does not apply (averaged over) is disabled, not merely ignored.
    for box, slider in ((i.all_layers, i.layer), (i.all_heads, i.head)):
        private(box.change, lambda averaged: gr.update(interactive=not averaged), [box],
                [slider])
