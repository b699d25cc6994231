"""Benchmark tab: layout and wiring. Handlers: app/benchmark.py."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from app import benchmark, controls, library
from app.examples import BENCH_DATASETS
from app.wiring import Guard
from engine import Engine
from engine.algorithms import ALGORITHMS
from visualize.bench import score_vs_ttft

DEFAULT = ["full_recompute", "naive", "cacheblend", "legolink"]


@dataclass
class BenchTab:
    """The Benchmark tab's controls and outputs."""

    dataset: gr.Dropdown
    limit: gr.Slider
    max_chunks: gr.Slider
    lengths: gr.CheckboxGroup
    repeats: gr.Slider
    algorithms: gr.CheckboxGroup
    k: gr.Slider
    ratio: gr.Slider
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


def build(engine: Engine) -> BenchTab:
    """Lay out the Benchmark tab (inside an open gr.Tab)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            algorithms = gr.CheckboxGroup(list(ALGORITHMS), value=DEFAULT, label="Algorithms",
                                          info="full_recompute always runs: the reference")
            with gr.Row():
                k = controls.recompute_k(engine, "legolink k")
                ratio = controls.recompute_ratio(engine, "cacheblend ratio")
        with gr.Column(scale=2):
            gr.Markdown("**Accuracy** on bundled examples: score and fidelity against TTFT.")
            dataset = gr.Dropdown(list(BENCH_DATASETS), value=next(iter(BENCH_DATASETS)),
                                  label="Dataset")
            with gr.Row():
                limit = gr.Slider(1, benchmark.MAX_EXAMPLES, value=2, step=1, label="examples")
                max_chunks = gr.Slider(1, 10, value=6, step=1, label="max chunks per example")
            run_accuracy = gr.Button("Run accuracy benchmark", variant="primary")
            run_frontier = gr.Button("Run frontier: KL vs TTFT for every setting")
        with gr.Column(scale=2):
            gr.Markdown("**Speed**: median TTFT against context length, synthetic chunks.")
            lengths = gr.CheckboxGroup(list(benchmark.SPEED_LENGTHS), value=[256, 512, 1024],
                                       label="Context lengths (tokens)")
            repeats = gr.Slider(1, 5, value=2, step=1, label="repeats")
            run_speed = gr.Button("Run speed sweep", variant="primary")
    summary = gr.Markdown(label="Summary", elem_classes="status")
    figure = gr.Plot(score_vs_ttft({}), show_label=False)
    table = gr.Dataframe(label="Results", interactive=False)
    files = gr.File(label="Download: results JSON and the figure as HTML", file_count="multiple",
                    interactive=False)
    return BenchTab(dataset, limit, max_chunks, lengths, repeats, algorithms, k, ratio,
                    run_accuracy, run_speed, run_frontier, summary, figure, table, files)


def wire(engine: Engine, tab: BenchTab, guard: Guard, store_view: list) -> None:
    """Attach the benchmark events (API: bench_accuracy, bench_speed, bench_frontier); `store_view`
    (the Library table and summary) shows the chunks a run compiled and evicted again."""
    outputs = [tab.figure, tab.table, tab.summary, tab.files]
    accuracy = guard.start(tab.run_accuracy.click, partial(benchmark.bench_accuracy, engine),
                           [tab.dataset, tab.limit, tab.algorithms, tab.k, tab.ratio,
                            tab.max_chunks], outputs, "bench_accuracy")
    guard.release(accuracy.then(partial(library.store_stats, engine), None, store_view,
                                api_visibility="private"))
    speed = guard.start(tab.run_speed.click, partial(benchmark.bench_speed, engine),
                        [tab.lengths, tab.repeats, tab.algorithms, tab.k, tab.ratio], outputs,
                        "bench_speed")
    guard.release(speed.then(partial(library.store_stats, engine), None, store_view,
                             api_visibility="private"))
    frontier = guard.start(tab.run_frontier.click, partial(benchmark.bench_frontier, engine),
                           [tab.dataset, tab.limit, tab.max_chunks], outputs, "bench_frontier")
    guard.release(frontier.then(partial(library.store_stats, engine), None, store_view,
                                api_visibility="private"))

