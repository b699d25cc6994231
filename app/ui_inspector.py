"""Inspect tab: layout and wiring. Handlers: app/inspector.py. It inspects the Compose tab's
request: the line at its top says which."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import compose, controls
from app.controls import Choices, Radio, Slider
from app.inspector import (
    DEFAULT_ALGORITHMS,
    MAX_SINK_TOKENS,
    MODE_CHOICES,
    estimate_inspect,
    inspect_attention,
    render_attention,
)
from app.lab import Lab
from app.ui_compose import ComposeTab
from app.wiring import Step, bind, private, redraw, step
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
                          elem_classes="status", elem_id="inspect-request")
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


def inspect_step(lab: Lab, c: ComposeTab, i: InspectTab, api_name: str | None) -> Step:
    """The model call of the Inspect tab (on its button, or after another tab's)."""
    inputs = [*c.request, i.algorithms, c.knobs["k"], c.knobs["ratio"], i.layer, i.all_layers,
              i.head, i.all_heads, i.mode, i.sink_tokens, *controls.appended(c.knobs)]
    return step(lab, controls.with_knobs(inspect_attention), inputs,
                [i.heatmap, i.sinks, i.summary], api_name, model=True,
                estimate=controls.with_knobs(estimate_inspect))


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
