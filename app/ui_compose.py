"""Compose tab: layout and wiring. Handlers: app/compose.py.

The Inspect tab (app/ui_inspector.py) reuses this tab's request (prefix, chunks, question, the
algorithms' knobs), so one prompt is composed once and looked at both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import compose, controls, keep, library, notes
from app.controls import FreeDropdown
from app.lab import Lab
from app.planning import estimate_compare
from app.render import column_widths
from app.verdict import cards_html, verdicts_markdown
from app.wiring import Guard, bind, private, redraw, step
from engine import DEFAULT_ALGORITHMS, algorithm_choices, split_label
from visualize.mask import recompute_mask_strip
from visualize.ttft import ttft_bars


@dataclass
class ComposeTab:
    """The request controls and the results of the Compose tab."""

    preset: gr.Dropdown
    example: gr.Button
    prefix: gr.Textbox
    chunks: gr.Dropdown
    reverse: gr.Button
    rotate: gr.Button
    order: gr.Markdown
    question: gr.Dropdown
    algorithms: gr.CheckboxGroup
    knobs: dict[str, gr.Slider]  # one per declared parameter, by name (controls.knobs)
    max_new_tokens: gr.Slider
    run: gr.Button
    reuse: gr.Markdown
    table: gr.Dataframe
    answers: gr.HTML
    ttft: gr.Plot
    mask: gr.Plot
    report: gr.JSON
    to_inspect: gr.Button
    verdicts: gr.Markdown  # one sentence per algorithm, above the table (app/verdict.py)
    cards: gr.HTML  # the table as one card per algorithm, shown instead on narrow screens
    download: gr.Button  # the kept comparison as one HTML page (app/keep.py), a redraw
    kept_file: gr.File  # that page, to save
    kept: gr.State  # the last comparison as the server computed it (keep.Kept), or None

    @property
    def request(self) -> list:
        return [self.prefix, self.chunks, self.question]

    @property
    def model_buttons(self) -> list[gr.Button]:
        return [self.run, self.example, self.to_inspect]


def build(lab: Lab) -> ComposeTab:
    """Lay out the Compose tab (inside an open gr.Tab)."""
    presets = lab.presets
    first_prefix = next(iter(presets.prefixes))
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            with gr.Row(equal_height=True):
                preset = gr.Dropdown(list(presets.prefixes), value=first_prefix, scale=3,
                                     label="Prefix preset")
                example = gr.Button("▶ Run the example: 4 documents, 5 algorithms",
                                    variant="secondary", scale=2, elem_id="run-example")
            prefix = gr.Textbox(presets.prefixes[first_prefix], label="Prefix (system prompt)",
                                lines=2, info="not cached: it may change with every request")
            chunks = FreeDropdown([], multiselect=True, elem_id="chunk-picker",
                                  allow_custom_value=True, label="Chunks, in prompt order",
                                  info="the order you pick them in is the order in the prompt;"
                                       " remove and re-add one to move it to the end")
            with gr.Row():
                reverse = gr.Button("⇅ Reverse order", size="sm")
                rotate = gr.Button("↻ Move first to end", size="sm")
            order = gr.Markdown(compose.order_preview(lab, "", []), elem_classes="order")
            question = FreeDropdown(presets.questions, value=presets.questions[0],
                                    allow_custom_value=True, label="Question",
                                    info="pick one or type your own", elem_id="question")
        with gr.Column(scale=2, min_width=300):
            algorithms = controls.Choices(list(algorithm_choices()), value=default_names(),
                                          label="Algorithms", elem_id="compose-algorithms",
                                          info="full_recompute always runs first as the "
                                               "reference; unchecked, its row is hidden")
            knobs = controls.knobs("compose")
            max_new_tokens = controls.max_new_tokens(lab)
            run = gr.Button("Run comparison", variant="primary", size="lg", elem_id="run-compare")
    reuse = gr.Markdown(label="Reuse", elem_classes="status", elem_id="reuse")
    verdicts = gr.Markdown(verdicts_markdown([], 0.0), label="Verdicts", elem_id="verdicts")
    cards = gr.HTML(cards_html([], 0.0), label="Result cards", elem_id="result-cards")
    table = gr.Dataframe(headers=compose.TABLE_HEADERS, label="Results", interactive=False,
                         elem_id="results-table", elem_classes="scroll-table", wrap=True,
                         max_height=900, column_widths=column_widths(
                             compose.TABLE_HEADERS, wide={
                                 "algorithm": 150, "answer": 280, "first token": 110,
                                 "whole answer": 110, "TTFT (ms)": 100, "computed": 96}))
    answers = gr.HTML(label="Answers token by token", elem_id="answers")
    with gr.Accordion("What the columns mean", open=False):
        gr.Markdown(notes.glossary())
    with gr.Accordion("The algorithms", open=False):
        gr.Markdown(notes.algorithms_markdown(), elem_id="algorithms-table")
    ttft = gr.Plot(ttft_bars([]), label="TTFT", show_label=False, elem_id="ttft-plot")
    mask = gr.Plot(recompute_mask_strip([], []), label="Recompute mask", show_label=False,
                   elem_id="mask-plot")
    with gr.Row(equal_height=True):
        to_inspect = gr.Button("See this request's attention on the Inspect tab →",
                               elem_id="to-inspect")
        download = gr.Button("⬇ Keep this comparison as one HTML page", elem_id="keep-compare")
    kept_file = gr.File(label="Your comparison (HTML: opens offline)", visible=False,
                        interactive=False, elem_id="kept-file")
    with gr.Accordion("Raw results (JSON)", open=False):
        report = gr.JSON(label="Report", show_label=False)
    return ComposeTab(preset, example, prefix, chunks, reverse, rotate, order, question,
                      algorithms, knobs, max_new_tokens, run, reuse, table, answers, ttft,
                      mask, report, to_inspect, verdicts, cards, download, kept_file,
                      gr.State(None))


def cleared(lab: Lab, session: str) -> tuple:
    """Empty results, shown as a run starts: a refusal or an error that follows leaves no
    earlier result under its message, and nothing stale is kept to download. -> (table,
    answers, TTFT, mask, reuse, verdicts, cards, report, kept, the kept file)."""
    return (None, "", ttft_bars([]), recompute_mask_strip([], []), "",
            verdicts_markdown([], 0.0), cards_html([], 0.0), None, None,
            gr.update(value=None, visible=False))


def download(lab: Lab, session: str, kept: keep.Kept | None) -> dict:
    """The kept comparison's page, shown to save (a refusal says why when none is kept)."""
    return gr.update(value=keep.download_comparison(lab, session, kept), visible=True)


def default_names() -> list[str]:
    """The choices checked at first: those of the default labels, in the registry's order."""
    chosen = {"-".join(filter(None, split_label(label)[:2])) for label in DEFAULT_ALGORITHMS}
    return [choice for choice in algorithm_choices() if choice in chosen]


def wire(lab: Lab, c: ComposeTab, guard: Guard, view: list, request_line: gr.Markdown,
         inspect_run: list, tabs: gr.Tabs) -> None:
    """Attach the Compose events. `view` (the library's table, summary and pickers) is
    refreshed after every model call; `request_line` is the Inspect tab's copy of the
    request; `inspect_run` the Inspect tab's own chain step (after `to_inspect`)."""
    # The last output keeps the comparison for the page's download (a State: no API output).
    run_compare = keep.keeping(controls.with_knobs(compose.run_compare))
    compare_in = [*c.request, c.algorithms, c.knobs["k"], c.knobs["ratio"], c.max_new_tokens,
                  *controls.appended(c.knobs)]
    compare_out = [c.table, c.answers, c.ttft, c.mask, c.reuse, c.verdicts, c.cards, c.report,
                   c.kept]
    compare = step(lab, run_compare, compare_in, compare_out, "run_compare", model=True,
                   estimate=estimate_compare)
    refreshed = step(lab, library.refresh_view, [], view)
    # A new run (or its refusal, or its error) replaces the last result: nothing old stays.
    blank = step(lab, cleared, [], [*compare_out, c.kept_file], show_progress="hidden")
    guard.chain(c.run.click, [blank, compare, refreshed])
    filled = step(lab, compose.example_request, [],
                  [c.preset, c.prefix, c.chunks, c.question, c.algorithms], "example_request")
    guard.chain(c.example.click,
                [filled, blank, step(lab, run_compare, compare_in, compare_out, model=True,
                                     estimate=estimate_compare),
                 refreshed])
    redraw(lab, c.download.click, bind(lab, download), [c.kept], [c.kept_file])
    guard.chain(c.to_inspect.click,
                [step(lab, lambda lab, session: gr.Tabs(selected="inspect"), [], [tabs]),
                 *inspect_run, refreshed])

    private(c.preset.input, lambda name: lab.presets.prefixes.get(name, ""), [c.preset],
            [c.prefix])
    private(c.reverse.click, compose.reverse_order, [c.chunks], [c.chunks])
    private(c.rotate.click, compose.rotate_order, [c.chunks], [c.chunks])

    def describe(lab: Lab, session: str, prefix: str, chunks: list[str] | None,
                 question: str) -> tuple[str, str]:
        return (compose.order_preview(lab, session, chunks),
                compose.request_summary(prefix, chunks, question))

    gr.on([c.prefix.change, c.chunks.change, c.question.change], bind(lab, describe),
          c.request, [c.order, request_line], api_visibility="private", queue=False,
          show_progress="hidden")
