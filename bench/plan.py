"""The model calls a benchmark run will make, listed before it starts (for the app's estimate of
what a run costs): every compile, every request with its prompt's shape, every plain prefill.

Each plan follows its benchmark's code call by call (bench/accuracy.py `evaluate`,
bench/speed.py `run_speed`); tests/bench/test_plan.py runs both on a tiny model and checks
that the plan lists exactly the calls the run made.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from bench.accuracy import PROMPTS, answer_tokens, fitting
from bench.frontier import FRONTIER_ALGORITHMS
from bench.text import OVERHEAD_MARGIN, fresh_prefix, fresh_question, sweep_budget
from engine import AlgorithmSpec, Engine, parse_algorithms, template_parts

PREFIX_CACHE, NAIVE = "prefix_cache", "naive"


@dataclass(frozen=True)
class PlannedCall:
    """One model call of a benchmark, `count` times.

    kind "compile": a chunk of `num_tokens` is compiled; "run": a request under `label` over
    chunks of these lengths behind `prefix_tokens` uncached tokens, `num_tokens` in all,
    generating `new_tokens` (`same_prefix`: prefix_cache holds this prompt up to its
    question); "prefill": Hugging Face's own causal prefill of `num_tokens`; "floor": the
    uncached positions of a run's prompt alone, over its gathered chunks."""

    kind: str
    num_tokens: int
    label: str = ""
    chunks: tuple[int, ...] = ()
    prefix_tokens: int = 0
    new_tokens: int = 1
    count: int = 1
    same_prefix: bool = False


def _run(label: str, chunks: list[int], prefix: int, suffix: int, new_tokens: int,
         count: int = 1, kind: str = "run", same_prefix: bool = False) -> PlannedCall:
    return PlannedCall(kind, prefix + sum(chunks) + suffix, label, tuple(chunks), prefix,
                       new_tokens, count, same_prefix)


def plan_evaluate(engine: Engine, examples: list[dict[str, Any]], specs: list[AlgorithmSpec],
                  max_chunks: int | None, max_new_tokens: int | None) -> list[PlannedCall]:
    """`bench.accuracy.evaluate`'s calls: per example its chunks compiled, then every
    algorithm (the first example: every one but prefix_cache once more, one token, untimed).
    Chunks already in the store are counted as compiles: the most it can cost."""
    calls = []
    for i, example in enumerate(examples):
        prompt = PROMPTS[example["task"]]
        layout = engine.plan_texts(prompt.prefix, example["chunks"][:max_chunks],
                                   prompt.question.format(question=example["question"]),
                                   1).layout  # tokenized as compile does; no model work
        ids = [seg.token_ids for seg in layout.chunks]
        calls += [PlannedCall("compile", len(chunk)) for chunk in ids]
        prefix = layout.segments[0].end if layout.segments[0].kind == "prefix" else 0
        suffix = layout.num_tokens - layout.segments[-1].start
        lengths = [len(c) for c in ids]
        if i == 0:
            calls += [_run(s.label, lengths, prefix, suffix, 1) for s in specs
                      if s.name != PREFIX_CACHE]
        new_tokens = answer_tokens(example["task"], max_new_tokens)
        calls += [_run(s.label, lengths, prefix, suffix, new_tokens) for s in specs]
    return calls


def plan_accuracy(engine: Engine, examples: list[dict[str, Any]],
                  algorithms: list[AlgorithmSpec], max_chunks: int | None,
                  max_new_tokens: int | None = None) -> list[PlannedCall]:
    """`bench.accuracy.run_accuracy`'s calls."""
    specs = parse_algorithms(algorithms)
    kept, _ = fitting(engine, examples, max_chunks, max_new_tokens)
    return plan_evaluate(engine, kept, specs, max_chunks, max_new_tokens)


def plan_frontier(engine: Engine, examples: list[dict[str, Any]], num_chunks: int, limit: int,
                  max_new_tokens: int | None,
                  algorithms: tuple[str, ...] = FRONTIER_ALGORITHMS) -> list[PlannedCall]:
    """`bench.frontier.run_frontier`'s calls for one block of a data file's examples."""
    specs = parse_algorithms(list(algorithms))
    kept, _ = fitting(engine, examples, num_chunks, max_new_tokens, limit)
    return plan_evaluate(engine, kept, specs, num_chunks, max_new_tokens)


def plan_speed(engine: Engine, lengths: tuple[int, ...], repeats: int,
               algorithms: list[AlgorithmSpec], chunk_tokens: int, requests: int,
               pool_size: int, request_chunks: int, throughput_new_tokens: int,
               memory: bool = True) -> list[PlannedCall]:
    """`bench.speed.run_speed`'s calls: per length its chunks compiled, a warm-up, every
    algorithm per repeat (prefix_cache once more with the same prefix), the floor pass and
    HF's prefill, the cold runs of the memory measure; then the throughput stream and the
    compile speed."""
    specs = parse_algorithms(algorithms)
    rng = random.Random(0)
    head, tail = template_parts(engine.tokenizer, fresh_prefix(rng), fresh_question(rng))
    prefix = len(engine.tokenizer(head, add_special_tokens=False).input_ids)
    suffix = len(engine.tokenizer(tail, add_special_tokens=False).input_ids)
    cached = [s for s in specs if s.name == PREFIX_CACHE]
    calls = []
    for i, length in enumerate(lengths):
        budget, num_chunks = sweep_budget(min(length, engine.context_limit),
                                          prefix + suffix + OVERHEAD_MARGIN, chunk_tokens)
        chunks = [budget // num_chunks] * num_chunks
        calls += [PlannedCall("compile", size) for size in chunks]
        rounds = repeats + int(i == 0)  # the first length warms up with a round untimed
        if i > 0:
            calls.append(_run(NAIVE, chunks, prefix, suffix, 1))
        calls += [_run(s.label, chunks, prefix, suffix, 1, rounds) for s in specs]
        calls += [_run(s.label, chunks, prefix, suffix, 1, rounds, same_prefix=True)
                  for s in cached]
        calls.append(_run(NAIVE, chunks, prefix, suffix, 1, rounds, kind="floor"))
        calls.append(PlannedCall("prefill", prefix + budget + suffix, count=repeats))
        if memory:
            calls += [_run(s.label, chunks, prefix, suffix, 1) for s in specs]
            calls += [_run(s.label, chunks, prefix, suffix, 1, same_prefix=True)
                      for s in cached]
    calls += [PlannedCall("compile", chunk_tokens, count=pool_size)]
    calls += [_run(s.label, [chunk_tokens] * request_chunks, prefix, suffix,
                   throughput_new_tokens, requests) for s in specs]
    calls += [PlannedCall("compile", chunk_tokens, count=repeats),
              PlannedCall("prefill", chunk_tokens, count=repeats)]
    return calls
