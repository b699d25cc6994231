"""Benchmark tab handlers: a small accuracy run over a bundled dataset, a speed sweep and the
frontier (first-token KL against TTFT), via bench.accuracy / bench.speed / bench.frontier;
results as figures, a table and files."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from app.budget import Estimate
from app.cost import Prompt, Work, compile_work, run_work
from app.errors import user_errors
from app.examples import BENCH_DATASETS
from app.lab import Lab
from app.library import PROGRESS
from app.planning import choose_algorithms, settings
from app.sessions import holding
from bench.accuracy import run_accuracy
from bench.data import examples_from_jsonl
from bench.frontier import FRONTIER_ALGORITHMS, corner_text, run_frontier
from bench.plan import PlannedCall, plan_accuracy, plan_frontier, plan_speed
from bench.report import write_json
from bench.speed import run_speed
from engine import AlgorithmSpec, whole_number
from visualize.bench import score_vs_ttft, ttft_vs_length
from visualize.frontier import frontier_figure
from visualize.notes import noise_note, zero_score_note

SPEED_LENGTHS = (256, 512, 1024, 2048, 4096)  # offered when the limits allow them
# The speed sweep's shape here: small chunks, a short throughput stream (bench/speed.py).
SPEED_OPTIONS = dict(chunk_tokens=256, requests=3, pool_size=4, request_chunks=3,
                     throughput_new_tokens=2)
ACCURACY_COLUMNS = ["algorithm", "score", "agreement", "first_token_kl", "ttft_ms_median",
                    "recompute_share"]
FRONTIER_COLUMNS = ["chunks", "algorithm", "first_token_kl", "ttft_ms_median", "agreement",
                    "score", "recompute_share"]
FRONTIER_NEW_TOKENS = 8  # answers this long: the frontier is about the first token's KL
# A prompt of whole chunks and fixed parts rarely comes out at the length asked: both shown.
SPEED_COLUMNS = ["context tokens", "asked", "algorithm", "ttft_ms_median",
                 "ratio to full_recompute", "ratio to naive"]



# The four-task frontier the README reports (scripts/frontier_table.py's table and figure),
# shown in the Benchmark tab beside the small runs a visitor can start.
MEASURED_FRONTIER = Path(__file__).resolve().parents[1] / "docs" / "figures" / "frontier-issue21.md"
MEASURED_FRONTIER_FIGURE = MEASURED_FRONTIER.with_suffix(".png")


def measured_frontier() -> str:
    """The README's measured frontier as Markdown (its table and the goal, task by task)."""
    return MEASURED_FRONTIER.read_text(encoding="utf-8")


def algorithm_specs(algorithms: Sequence[str] | None, knobs: dict[str, Any],
                    ) -> list[AlgorithmSpec]:
    """Checkbox names with the UI's knobs (by parameter name) -> the engine's specs."""
    chosen = choose_algorithms(algorithms)
    values = settings(**knobs)
    return [AlgorithmSpec.of(name, **values) for name in chosen]


def _reporter(progress: gr.Progress):
    return lambda fraction, text: progress(fraction, desc=text)


def speed_lengths(lab: Lab) -> list[int]:
    """The context lengths a visitor may sweep here."""
    return [n for n in SPEED_LENGTHS if n <= lab.limits.bench_length]


def planned_work(lab: Lab, calls: list[PlannedCall]) -> Work:
    """The work of a benchmark's planned calls (bench/plan.py). A floor pass or a request
    prefix_cache holds up to its question computes at most naive's positions."""
    layers, work = lab.engine.model.spec.num_layers, Work()
    for call in calls:
        if call.kind in ("compile", "prefill"):
            one = compile_work(call.num_tokens, layers)
        else:
            suffix = call.num_tokens - call.prefix_tokens - sum(call.chunks)
            spec = (AlgorithmSpec("naive") if call.kind == "floor" or call.same_prefix else
                    AlgorithmSpec.parse(call.label))
            one = run_work(Prompt.synthetic(list(call.chunks), call.prefix_tokens, suffix), spec,
                           call.new_tokens, layers)
        work += one * call.count
    return work


def _notes(*notes: str) -> str:
    """The figure's notes (visualize/notes.py) for the summary under it: what the numbers
    cannot say, in bold so that it is read before the table."""
    return "".join(f" **Note:** {note}" for note in notes if note)


def _files(lab: Lab, session: str, result: dict[str, Any], figure: go.Figure,
           name: str) -> list[str]:
    """The result as JSON and its figure as HTML (plotly.js from its CDN) in the visitor's
    own directory, which holds only its latest run and goes when the session does."""
    library = lab.libraries.hold(session)
    if library.files is not None:
        shutil.rmtree(library.files, ignore_errors=True)
    library.files = directory = Path(tempfile.mkdtemp(prefix="epic-bench-"))
    figure_path = directory / f"{name}.html"
    figure.write_html(str(figure_path), include_plotlyjs="cdn", full_html=True)
    return [str(write_json(result, directory / f"{name}.json")), str(figure_path)]


def _examples(lab: Lab, dataset: Any, limit: Any, max_chunks: Any) -> tuple[list, int, int]:
    if dataset not in BENCH_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: choose from {', '.join(BENCH_DATASETS)}")
    limit = whole_number(limit, "examples", 1, lab.limits.bench_examples)
    max_chunks = whole_number(max_chunks, "max chunks", 1, lab.limits.bench_chunks)
    return examples_from_jsonl(BENCH_DATASETS[dataset]), limit, max_chunks


def _accuracy(lab: Lab, dataset: Any, limit: Any, algorithms: Any, k: Any, ratio: Any,
              max_chunks: Any, knobs: dict[str, Any],
              ) -> tuple[list, list[AlgorithmSpec], int, Estimate]:
    """The accuracy run's inputs, checked -> (examples, specs, max chunks, its estimate)."""
    examples, limit, max_chunks = _examples(lab, dataset, limit, max_chunks)
    specs = algorithm_specs(algorithms, {"k": k, "ratio": ratio, **knobs})
    examples = examples[:limit]
    work = planned_work(lab, plan_accuracy(lab.engine, examples, specs, max_chunks))
    return examples, specs, max_chunks, lab.estimator.estimate(
        "bench_accuracy", work, f"{limit} example(s) x {len(specs)} algorithms",
        "choose fewer examples, chunks or algorithms, or a smaller k or CacheBlend ratio")


def estimate_accuracy(lab: Lab, session: str, dataset: Any, limit: Any, algorithms: Any,
                      k: Any, ratio: Any, max_chunks: Any, **knobs: Any) -> Estimate:
    """What `bench_accuracy` with these inputs will cost (checked when it is queued)."""
    return _accuracy(lab, dataset, limit, algorithms, k, ratio, max_chunks, knobs)[3]


@user_errors
@holding  # its result files are kept in the visitor's library
def bench_accuracy(lab: Lab, session: str, dataset: str, limit: float, algorithms: list[str],
                   k: float, ratio: float, max_chunks: float, progress: gr.Progress = PROGRESS,
                   **knobs: float) -> tuple[go.Figure, pd.DataFrame, str, list[str]]:
    """Score and fidelity per algorithm on the first `limit` examples of a bundled dataset
    -> (score-vs-TTFT figure, table, summary, [JSON file, HTML figure])."""
    examples, specs, max_chunks, estimate = _accuracy(lab, dataset, limit, algorithms, k, ratio,
                                                      max_chunks, knobs)
    with lab.estimator.timed(lab.admission.within_budget(estimate)):
        result = run_accuracy(lab.engine, examples, specs, max_chunks=max_chunks,
                              progress=_reporter(progress))
    rows = [[label, *(round(row[c], 1 if c.endswith("_ms_median") else 4)
                      for c in ACCURACY_COLUMNS[1:])]
            for label, row in result["algorithms"].items()]
    figure = score_vs_ttft(result)
    summary = (f"**{result['n']}** example(s) of {result['dataset']}, "
               f"{result['context_tokens_mean']:.0f} prompt tokens on average, "
               f"{result['wall_s']:.1f} s. Score: {result['task']} metric against the gold "
               "answers; agreement: share of answers identical to full recompute's.")
    if result.get("chunks_note"):
        summary += f" Note: {result['chunks_note']}."
    summary += _notes(zero_score_note(result["algorithms"]))
    return (figure, pd.DataFrame(rows, columns=ACCURACY_COLUMNS), summary,
            _files(lab, session, result, figure, "accuracy"))


def _speed(lab: Lab, lengths: Any, repeats: Any, algorithms: Any, k: Any, ratio: Any,
           knobs: dict[str, Any]) -> tuple[tuple[int, ...], int, list[AlgorithmSpec], Estimate]:
    """The speed sweep's inputs, checked -> (lengths, repeats, specs, its estimate)."""
    offered = speed_lengths(lab)
    chosen = sorted({whole_number(n, "length", 1, max(offered)) for n in lengths or []})
    if not chosen:
        raise ValueError("choose at least one context length")
    unknown = [n for n in chosen if n not in offered]
    if unknown:
        raise ValueError(f"length {unknown[0]} is not offered: choose from {tuple(offered)}")
    repeats = whole_number(repeats, "repeats", 1, lab.limits.bench_repeats)
    specs = algorithm_specs(algorithms, {"k": k, "ratio": ratio, **knobs})
    work = planned_work(lab, plan_speed(lab.engine, tuple(chosen), repeats, specs,
                                        **SPEED_OPTIONS))
    return tuple(chosen), repeats, specs, lab.estimator.estimate(
        "bench_speed", work, f"{len(chosen)} length(s) x {len(specs)} algorithms x {repeats} "
        "repeat(s)", "choose fewer or shorter lengths, fewer repeats or algorithms, or a "
        "smaller k or CacheBlend ratio")


def estimate_speed(lab: Lab, session: str, lengths: Any, repeats: Any, algorithms: Any,
                   k: Any, ratio: Any, **knobs: Any) -> Estimate:
    """What `bench_speed` with these inputs will cost (checked when it is queued)."""
    return _speed(lab, lengths, repeats, algorithms, k, ratio, knobs)[3]


@user_errors
@holding  # its result files are kept in the visitor's library
def bench_speed(lab: Lab, session: str, lengths: list[Any], repeats: float,
                algorithms: list[str], k: float, ratio: float, progress: gr.Progress = PROGRESS,
                **knobs: float) -> tuple[go.Figure, pd.DataFrame, str, list[str]]:
    """Median TTFT per algorithm at each context length (plus a short request-stream
    throughput run) -> (TTFT-vs-length figure, table, summary, [JSON file, HTML figure])."""
    chosen, repeats, specs, estimate = _speed(lab, lengths, repeats, algorithms, k, ratio, knobs)
    with lab.estimator.timed(lab.admission.within_budget(estimate)):
        result = run_speed(lab.engine, chosen, repeats, specs, **SPEED_OPTIONS,
                           progress=_reporter(progress))
    rows = []
    for asked, block in result["sweep"].items():
        for label, row in block["algorithms"].items():
            rows.append([round(block["context_tokens"]), int(asked), label,
                         round(row["ttft_ms_median"], 1),
                         round(row["ttft_ratio_to_full_recompute"], 3),
                         round(row["ttft_ratio_to_naive"], 3)])
    rps = result["throughput"]["algorithms"]
    measured = ", ".join(f"{block['context_tokens']:,.0f} ({int(asked):,})"
                         for asked, block in result["sweep"].items())
    summary = (f"Medians of {repeats} repeat(s) after a warm-up, {result['wall_s']:.1f} s in "
               f"all. Context tokens as measured (asked): {measured}. Request-stream "
               "throughput (requests/s): "
               + ", ".join(f"{label} {v['requests_per_s']:.2f}" for label, v in rps.items())
               + "." + _notes(noise_note(repeats)))
    figure = ttft_vs_length(result)
    return (figure, pd.DataFrame(rows, columns=SPEED_COLUMNS), summary,
            _files(lab, session, result, figure, "speed"))


def _frontier(lab: Lab, dataset: Any, limit: Any,
              max_chunks: Any) -> tuple[list, int, int, Estimate]:
    """The frontier's inputs, checked -> (examples, limit, max chunks, its estimate)."""
    examples, limit, max_chunks = _examples(lab, dataset, limit, max_chunks)
    work = planned_work(lab, plan_frontier(lab.engine, examples, max_chunks, limit,
                                           FRONTIER_NEW_TOKENS))
    return examples, limit, max_chunks, lab.estimator.estimate(
        "bench_frontier", work, f"{limit} example(s) x {len(FRONTIER_ALGORITHMS)} settings",
        "choose fewer examples or chunks")


def estimate_frontier(lab: Lab, session: str, dataset: Any, limit: Any,
                      max_chunks: Any) -> Estimate:
    """What `bench_frontier` with these inputs will cost (checked when it is queued)."""
    return _frontier(lab, dataset, limit, max_chunks)[3]


@user_errors
@holding  # its result files are kept in the visitor's library
def bench_frontier(lab: Lab, session: str, dataset: str, limit: float, max_chunks: float,
                   progress: gr.Progress = PROGRESS,
                   ) -> tuple[go.Figure, pd.DataFrame, str, list[str]]:
    """First-token KL against median TTFT for every frontier setting (naive, legolink0, ape,
    legolink-2..32, cacheblend-5..30, cacheblend-key-15, querylink-4..32, prophetkv-16,
    infoflow-16) on the first `limit` examples of a bundled dataset -> (frontier figure, table,
    summary with querylink's target and the lower-left corner, [JSON file, HTML figure])."""
    examples, limit, max_chunks, estimate = _frontier(lab, dataset, limit, max_chunks)
    with lab.estimator.timed(lab.admission.within_budget(estimate)):
        result = run_frontier(lab.engine, examples, (max_chunks,), FRONTIER_ALGORITHMS,
                              limit=limit, max_new_tokens=FRONTIER_NEW_TOKENS,
                              progress=_reporter(progress))
    block = next(iter(result["lengths"].values()))
    rows = [[block["num_chunks"], label, *(round(row[c], 1 if c.endswith("_ms_median") else 4)
                                           for c in FRONTIER_COLUMNS[2:])]
            for label, row in block["algorithms"].items()]
    summary = (f"**{block['n']}** example(s) of {result['dataset']}, "
               f"{block['context_tokens_mean']:.0f} prompt tokens on average, "
               f"{result['wall_s']:.1f} s; answers of {FRONTIER_NEW_TOKENS} tokens.")
    goal = block["target"]
    if goal:
        summary += (f" **{goal['algorithm']}** (the same recompute count as "
                    f"{goal['ttft_reference']}): first-token KL {goal['first_token_kl']:.4f} vs "
                    f"{goal['kl_reference']} {goal['kl_reference_value']:.4f}, TTFT "
                    f"{goal['ttft_ratio']:.2f}x {goal['ttft_reference']}'s.")
    summary += corner_text(block.get("corner"))
    summary += _notes(noise_note(block["n"], "example"), zero_score_note(block["algorithms"]))
    figure = frontier_figure(result)
    return (figure, pd.DataFrame(rows, columns=FRONTIER_COLUMNS), summary,
            _files(lab, session, result, figure, "frontier"))
