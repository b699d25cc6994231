"""Compose and Inspect tabs: layout and wiring. Handlers: app/compose.py, app/inspector.py.

The Inspect tab reuses the Compose tab's request (prefix, chunks, question, k, ratio), so one
prompt is composed once and looked at both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from app import compose, controls, library
from app.examples import Presets, example_request
from app.inspector import DEFAULT_ALGORITHMS, inspect_attention, render_attention
from app.wiring import MODEL, Guard, private
from engine import Engine
from engine.algorithms import ALGORITHMS
from visualize.attention import attention_heatmaps, sink_mass_bars
from visualize.mask import recompute_mask_strip
from visualize.ttft import ttft_bars


@dataclass
class ComposeTab:
    """The request controls and the results of the Compose and Inspect tabs."""

    preset: gr.Dropdown
    example: gr.Button
    prefix: gr.Textbox
    chunks: gr.Dropdown
    reverse: gr.Button
    rotate: gr.Button
    order: gr.Markdown
    question: gr.Textbox
    algorithms: gr.CheckboxGroup
    k: gr.Slider
    ratio: gr.Slider
    max_new_tokens: gr.Slider
    run: gr.Button
    reuse: gr.Markdown
    table: gr.Dataframe
    ttft: gr.Plot
    mask: gr.Plot
    report: gr.JSON


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
    state: gr.State


def build_compose(engine: Engine, presets: Presets) -> ComposeTab:
    """Lay out the Compose tab (inside an open gr.Tab)."""
    first_prefix = next(iter(presets.prefixes))
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            with gr.Row(equal_height=True):
                preset = gr.Dropdown(list(presets.prefixes), value=first_prefix, scale=3,
                                     label="Prefix preset")
                example = gr.Button("▶ Example: show the sink effect", variant="secondary",
                                    scale=2)
            prefix = gr.Textbox(presets.prefixes[first_prefix], label="Prefix (system prompt)",
                                lines=2, info="not cached: it may change with every request")
            chunks = gr.Dropdown(library.chunk_choices(engine), multiselect=True,
                                 elem_id="chunk-picker", allow_custom_value=True,
                                 label="Chunks, in prompt order",
                                 info="the order you pick them in is the order in the prompt;"
                                      " remove and re-add one to move it to the end")
            with gr.Row():
                reverse = gr.Button("⇅ Reverse order", size="sm")
                rotate = gr.Button("↻ Move first to end", size="sm")
            order = gr.Markdown(compose.order_preview(engine, []), elem_classes="order")
            question = gr.Dropdown(presets.questions, value=presets.questions[0],
                                   allow_custom_value=True, label="Question",
                                   info="pick one or type your own")
        with gr.Column(scale=2):
            algorithms = gr.CheckboxGroup(list(ALGORITHMS), value=["full_recompute", "naive",
                                          "legolink"], label="Algorithms",
                                          info="full_recompute always runs first as the "
                                               "reference for 'matches' and KL; unchecked, "
                                               "its row is hidden")
            k = controls.recompute_k(engine)
            ratio = controls.recompute_ratio(engine)
            max_new_tokens = controls.max_new_tokens(engine)
            run = gr.Button("Run comparison", variant="primary", size="lg", elem_id="run-compare")
    reuse = gr.Markdown(label="Reuse", elem_classes="status")
    table = gr.Dataframe(headers=compose.TABLE_HEADERS, label="Results", interactive=False,
                         elem_id="results-table",
                         wrap=True, column_widths=["13%", "37%", "12%", "9%", "9%", "10%", "10%"])
    with gr.Row():
        ttft = gr.Plot(ttft_bars([]), label="TTFT", show_label=False, elem_id="ttft-plot")
    mask = gr.Plot(recompute_mask_strip([], []), label="Recompute mask", show_label=False,
                   elem_id="mask-plot")
    with gr.Accordion("Raw results (JSON)", open=False):
        report = gr.JSON(label="Report", show_label=False)
    return ComposeTab(preset, example, prefix, chunks, reverse, rotate, order, question,
                      algorithms, k, ratio, max_new_tokens, run, reuse, table, ttft, mask, report)


def build_inspect(engine: Engine, compose_tab: ComposeTab) -> InspectTab:
    """Lay out the Inspect tab (inside an open gr.Tab), which inspects the Compose tab's
    request."""
    spec = engine.model.spec
    request = gr.Markdown(compose.request_summary(compose_tab.prefix.value, [],
                                                  compose_tab.question.value),
                          elem_classes="status")
    with gr.Row(equal_height=True):
        algorithms = gr.CheckboxGroup(list(ALGORITHMS), value=list(DEFAULT_ALGORITHMS),
                                      label="Algorithms, side by side", scale=3)
        mode = gr.Radio([("min-max QKᵀ (as in the paper)", "minmax"), ("softmax", "softmax")],
                        value="minmax", label="Values", scale=2)
        sink_tokens = gr.Slider(1, 32, value=4, step=1, scale=2,
                                label="sink window: first tokens of each chunk")
    with gr.Row(equal_height=True):
        layer = gr.Slider(0, spec.num_layers - 1, value=min(2, spec.num_layers - 1), step=1,
                          label="layer", scale=3)
        all_layers = gr.Checkbox(True, label="average layers", scale=1)
        head = gr.Slider(0, spec.num_heads - 1, value=0, step=1, label="head", scale=3)
        all_heads = gr.Checkbox(True, label="average heads", scale=1)
    with gr.Row(equal_height=True):
        run = gr.Button("Inspect attention", variant="primary", scale=1, elem_id="run-inspect")
        summary = gr.Markdown(label="Sink summary", elem_classes="status", scale=4)
    heatmap = gr.Plot(attention_heatmaps({}), label="Attention maps", show_label=False,
                      elem_id="heatmap-plot")
    sinks = gr.Plot(sink_mass_bars({}, 4), label="Sink mass", show_label=False,
                    elem_id="sinks-plot")
    return InspectTab(request, algorithms, mode, sink_tokens, layer, all_layers, head,
                      all_heads, run, summary, heatmap, sinks, gr.State(None))


def wire(engine: Engine, presets: Presets, c: ComposeTab, i: InspectTab, guard: Guard,
         store_view: list, pickers: list) -> None:
    """Attach the Compose and Inspect events. `store_view` (the Library table and summary)
    shows new hits; `pickers` are the chunk dropdowns to refresh when the example compiles."""
    request = [c.prefix, c.chunks, c.question]
    params = [c.k, c.ratio]
    compare_in = [*request, c.algorithms, *params, c.max_new_tokens]
    compare_out = [c.table, c.ttft, c.mask, c.reuse, c.report]
    inspect_in = [*request, i.algorithms, *params, i.layer, i.all_layers, i.head, i.all_heads,
                  i.mode, i.sink_tokens]
    inspect_out = [i.heatmap, i.sinks, i.summary, i.state]
    run_compare = partial(compose.run_compare, engine)
    run_inspect = partial(inspect_attention, engine)

    def show_store() -> tuple:
        return library.store_stats(engine)

    ran = guard.start(c.run.click, run_compare, compare_in, compare_out, "run_compare")
    guard.release(ran.then(show_store, None, store_view, api_visibility="private"))
    inspected = guard.start(i.run.click, run_inspect, inspect_in, inspect_out, "inspect")
    guard.release(inspected.then(show_store, None, store_view, api_visibility="private"))

    def fill_example() -> tuple:
        """Fill the Compose tab with the bundled example (recompiling any evicted example
        document) -> (preset name, prefix, chunk keys in order, question, algorithms)."""
        prefix, chunks, question, algorithms = example_request(engine, presets)
        return presets.example_prefix, prefix, chunks, question, algorithms

    def refresh_pickers() -> list:
        choices = library.chunk_choices(engine)
        return [gr.update(choices=choices) for _ in pickers]

    filled = guard.start(c.example.click, fill_example, [],
                         [c.preset, c.prefix, c.chunks, c.question, c.algorithms],
                         "example_request")
    refreshed = filled.success(refresh_pickers, None, pickers, api_visibility="private")
    shown = refreshed.success(run_compare, compare_in, compare_out, api_visibility="private",
                              concurrency_id=MODEL, concurrency_limit=1)
    looked = shown.success(run_inspect, inspect_in, inspect_out, api_visibility="private",
                           concurrency_id=MODEL, concurrency_limit=1)
    guard.release(looked.then(show_store, None, store_view, api_visibility="private"))

    view_in = [i.state, i.layer, i.all_layers, i.head, i.all_heads, i.mode, i.sink_tokens]
    view_out = [i.heatmap, i.sinks, i.summary]
    for event in (i.layer.release, i.head.release, i.all_layers.change, i.all_heads.change,
                  i.mode.change, i.sink_tokens.release):
        private(event, render_attention, view_in, view_out)

    private(c.preset.input, lambda name: presets.prefixes.get(name, ""), [c.preset], [c.prefix])
    private(c.reverse.click, compose.reverse_order, [c.chunks], [c.chunks])
    private(c.rotate.click, compose.rotate_order, [c.chunks], [c.chunks])

    def describe(prefix: str, chunks: list[str] | None, question: str) -> tuple[str, str]:
        return (compose.order_preview(engine, chunks),
                compose.request_summary(prefix, chunks, question))

    gr.on([c.prefix.change, c.chunks.change, c.question.change], describe, request,
          [c.order, i.request], api_visibility="private", queue=False, show_progress="hidden")
