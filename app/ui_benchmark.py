"""Benchmark tab: layout and wiring. Handlers: app/benchmark.py. The controls' ranges are the
app's benchmark limits (app/limits.py)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import benchmark, controls
from app.examples import BENCH_DATASETS
from app.lab import Lab
from app.render import column_widths
from app.ui_compose import default_names
from app.wiring import Guard, Step, step
from engine import algorithm_choices
from visualize.bench import score_vs_ttft
from visualize.notes import MIN_REPEATS


@dataclass
class BenchTab:
    """The Benchmark tab's controls and outputs."""

    dataset: gr.Dropdown
    limit: gr.Slider
    max_chunks: gr.Slider
    lengths: gr.CheckboxGroup
    repeats: gr.Slider
    algorithms: gr.CheckboxGroup
    knobs: dict[str, gr.Slider]  # one per declared parameter, by name (controls.knobs)
    run_accuracy: gr.Button
    run_speed: gr.Button
    run_frontier: gr.Button
    summary: gr.Markdown
    figure: gr.Plot
    table: gr.Dataframe
    files: gr.File

    @property
    def model_buttons(self) -> list[gr.Button]:
        return [self.run_accuracy, self.run_speed, self.run_frontier]


def build(lab: Lab) -> BenchTab:
    """Lay out the Benchmark tab (inside an open gr.Tab)."""
    limits = lab.limits
    lengths = benchmark.speed_lengths(lab)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            algorithms = controls.Choices(list(algorithm_choices()), value=default_names(),
                                          label="Algorithms",
                                          info="full_recompute always runs: the reference",
                                          elem_id="bench-algorithms")
            with gr.Row():
                knobs = controls.knobs("bench")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("**Accuracy** on bundled examples: score and fidelity against TTFT.")
            dataset = gr.Dropdown(list(BENCH_DATASETS), value=next(iter(BENCH_DATASETS)),
                                  label="Dataset", allow_custom_value=True,
                                  elem_id="bench-dataset")
            with gr.Row():
                limit = controls.Slider(1, limits.bench_examples,
                                        value=min(2, limits.bench_examples), step=1,
                                        label="examples")
                max_chunks = controls.Slider(1, limits.bench_chunks,
                                             value=limits.bench_chunks, step=1,
                                             label="max chunks per example")
            run_accuracy = gr.Button("Run accuracy benchmark", variant="primary",
                                     elem_id="run-accuracy")
            run_frontier = gr.Button("Run frontier: KL vs TTFT for every setting",
                                     elem_id="run-frontier")
        with gr.Column(scale=2, min_width=300):
            gr.Markdown("**Speed**: median TTFT against context length, synthetic chunks.")
            lengths = controls.Choices(lengths, value=lengths[:2],
                                       label="Context lengths (tokens)", elem_id="lengths")
            repeats = controls.Slider(1, limits.bench_repeats, value=1, step=1,
                                      label="repeats",
                                      info=f"under {MIN_REPEATS}, close timings are noise: "
                                           "the figure says so")
            run_speed = gr.Button("Run speed sweep", variant="primary", elem_id="run-speed")
    summary = gr.Markdown(label="Summary", elem_classes="status", elem_id="bench-summary")
    figure = gr.Plot(score_vs_ttft({}), label="Figure", show_label=False,
                     elem_id="bench-figure")
    table = gr.Dataframe(headers=benchmark.ACCURACY_COLUMNS, label="Results",
                         interactive=False, elem_classes="scroll-table", elem_id="bench-table",
                         column_widths=column_widths(benchmark.ACCURACY_COLUMNS,
                                                     benchmark.SPEED_COLUMNS,
                                                     benchmark.FRONTIER_COLUMNS,
                                                     wide={"algorithm": 150}))
    files = gr.File(label="Download: results JSON and the figure as HTML", file_count="multiple",
                    interactive=False)
    with gr.Accordion("The measured frontier: every method on four tasks (the README's run)",
                      open=False, elem_id="measured-frontier"):
        gr.Markdown(benchmark.measured_frontier(), elem_classes="scroll-table")
        gr.Image(str(benchmark.MEASURED_FRONTIER_FIGURE), show_label=False, interactive=False)
    return BenchTab(dataset, limit, max_chunks, lengths, repeats, algorithms, knobs,
                    run_accuracy, run_speed, run_frontier, summary, figure, table, files)


def wire(lab: Lab, tab: BenchTab, guard: Guard, after: Step) -> None:
    """Attach the benchmark events (API: bench_accuracy, bench_speed, bench_frontier); `after`
    refreshes the visitor's library (a run compiles chunks and evicts them again)."""
    outputs = [tab.figure, tab.table, tab.summary, tab.files]
    k, ratio, extra = tab.knobs["k"], tab.knobs["ratio"], controls.appended(tab.knobs)
    guard.chain(tab.run_accuracy.click,
                [step(lab, controls.with_knobs(benchmark.bench_accuracy),
                      [tab.dataset, tab.limit, tab.algorithms, k, ratio, tab.max_chunks,
                       *extra], outputs, "bench_accuracy", model=True,
                      estimate=controls.with_knobs(benchmark.estimate_accuracy)), after])
    guard.chain(tab.run_speed.click,
                [step(lab, controls.with_knobs(benchmark.bench_speed),
                      [tab.lengths, tab.repeats, tab.algorithms, k, ratio, *extra], outputs,
                      "bench_speed", model=True,
                      estimate=controls.with_knobs(benchmark.estimate_speed)), after])
    guard.chain(tab.run_frontier.click,
                [step(lab, benchmark.bench_frontier, [tab.dataset, tab.limit, tab.max_chunks],
                      outputs, "bench_frontier", model=True,
                      estimate=benchmark.estimate_frontier), after])
