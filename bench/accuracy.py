"""Accuracy benchmark: every algorithm on the same compiled chunks, scored against gold answers
and against full recompute (answer agreement, first-answer-token KL), with TTFT beside it.

Per example, the chunks are compiled once; then each algorithm runs on the same chunk keys,
prefix and question, full_recompute first (the reference). Chunks the run compiled are evicted
after their example, so a benchmark leaves the store as it found it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.common import Progress, compile_chunks, compile_variants, engine_info, evict
from bench.metrics import score
from engine import (
    DEFAULT_ALGORITHMS,
    REFERENCE,
    AlgorithmSpec,
    ContextLimitError,
    Engine,
    RunResult,
    measure,
    parse_algorithms,
)

Scorer = Callable[[dict[str, Any], str], float]  # (example, answer) -> score in [0, 1]


@dataclass(frozen=True)
class TaskPrompt:
    """The request wording of one task: its system prompt and the question's frame."""

    prefix: str
    question: str  # a format string over {question}
    max_new_tokens: int  # long enough for the task's answers, short enough for a CPU run


# The one place that words the requests: every benchmark request takes its prefix from here.
PROMPTS: dict[str, TaskPrompt] = {
    "qa": TaskPrompt(
        "You are a careful assistant. Answer the question using only the passages the user "
        "gives. Answer briefly, in a few words, with no explanation.",
        "Question: {question}\nAnswer briefly, in a few words.", 32),
    "summarization": TaskPrompt(
        "You are a careful assistant. Write a brief, factual summary of what the user asks "
        "for, using only the text the user gives.",
        "{question}", 128),
    "fewshot": TaskPrompt(
        "You are a careful assistant. Label the last input the way the examples are labelled. "
        "Reply with the label only.",
        "{question}", 8),
}


@dataclass
class _Tally:
    """Per-example measurements of one algorithm."""

    scores: list[float] = field(default_factory=list)
    same_answer: list[bool] = field(default_factory=list)
    same_first_token: list[bool] = field(default_factory=list)
    kls: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    shares: list[float] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)
    gather: list[float] = field(default_factory=list)
    forward: list[float] = field(default_factory=list)

    def add(self, result: RunResult, reference: RunResult, value: float) -> None:
        fidelity = measure(result, reference)
        self.scores.append(value)
        self.same_answer.append(fidelity.answer_match)
        self.same_first_token.append(fidelity.first_token_match)
        self.kls.append(fidelity.first_token_kl)
        self.ttfts.append(result.ttft_ms)
        self.shares.append(result.recompute_share)
        self.reused.append(fidelity.counts.num_cached)
        self.gather.append(result.timings_ms.get("gather_ms", 0.0))
        self.forward.append(result.timings_ms.get("forward_ms", 0.0))

    def summary(self) -> dict[str, float]:
        """score, agreement (whole greedy answer identical to full recompute's),
        first_token_agreement, first_token_kl (mean KL(full || algo), nats), TTFT mean and
        median, recompute_share, reused_tokens_mean, and the link phases' medians."""
        return {
            "score": statistics.fmean(self.scores),
            "agreement": statistics.fmean(self.same_answer),
            "first_token_agreement": statistics.fmean(self.same_first_token),
            "first_token_kl": statistics.fmean(self.kls),
            "ttft_ms_mean": statistics.fmean(self.ttfts),
            "ttft_ms_median": statistics.median(self.ttfts),
            "recompute_share": statistics.fmean(self.shares),
            "reused_tokens_mean": statistics.fmean(self.reused),
            "gather_ms_median": statistics.median(self.gather),
            "forward_ms_median": statistics.median(self.forward),
        }


def task_score(example: dict[str, Any], answer: str) -> float:
    """The example's task metric (F1, Rouge-L or label accuracy) against its gold answers."""
    return score(example["task"], answer, example["answers"])


def answer_tokens(task: str, max_new_tokens: int | None) -> int:
    """Tokens an answer may take: the run's override, else the task's default."""
    return max_new_tokens or PROMPTS[task].max_new_tokens


def fitting(engine: Engine, examples: list[dict[str, Any]], max_chunks: int | None,
            max_new_tokens: int | None, limit: int | None = None,
            ) -> tuple[list[dict[str, Any]], list[str]]:
    """The first `limit` examples whose prompt plus answer fit the engine's context -> (them,
    the ids of those passed over). One long example must not end a run after minutes."""
    kept, skipped = [], []
    for example in examples:
        if limit is not None and len(kept) == limit:
            break
        prompt = PROMPTS[example["task"]]
        plan = engine.plan_texts(prompt.prefix, example["chunks"][:max_chunks],
                                 prompt.question.format(question=example["question"]),
                                 answer_tokens(example["task"], max_new_tokens))
        if not plan.fits:  # counted without compiling anything
            skipped.append(example["id"])
        else:
            kept.append(example)
    if not kept:
        raise ValueError(f"none of the {len(skipped)} examples fits the context limit of "
                         f"{engine.context_limit} tokens: cap chunks with max_chunks")
    return kept, skipped


def evaluate(engine: Engine, examples: list[dict[str, Any]], specs: list[AlgorithmSpec],
             scorer: Scorer = task_score, max_chunks: int | None = None,
             max_new_tokens: int | None = None, progress: Progress | None = None,
             ) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """Run every spec on every example -> (summary per label, one record per example).

    specs[0] must be full_recompute. Before the first measured request every algorithm runs
    once untimed (one token), so TTFT excludes first-call overheads, but those that reuse
    earlier requests' prefixes (prefix_cache): their cache holds only measured requests.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    if specs[0].name != REFERENCE:
        raise ValueError(f"the first algorithm must be {REFERENCE}, the reference")
    tallies = {spec.label: _Tally() for spec in specs}
    records = []
    for i, example in enumerate(examples):
        if progress:
            progress(i / len(examples), f"example {i + 1}/{len(examples)}")
        prompt = PROMPTS[example["task"]]
        new_tokens = answer_tokens(example["task"], max_new_tokens)
        added: set[str] = set()
        try:
            keys = compile_chunks(engine, example["chunks"][:max_chunks], added)
            request = {"prefix": prompt.prefix, "chunks": keys,
                       "question": prompt.question.format(question=example["question"])}
            compile_variants(engine, request, specs, added)
            if i == 0:
                for spec in specs:
                    if not spec.algorithm.reuses_prefixes:
                        engine.run(**request, algorithm=spec, max_new_tokens=1)
            results = {spec.label: engine.run(**request, algorithm=spec,
                                              max_new_tokens=new_tokens) for spec in specs}
        except ValueError as e:
            hint = " (cap chunks with max_chunks)" if isinstance(e, ContextLimitError) else ""
            raise ValueError(f"example {example['id']}: {e}{hint}") from e
        finally:
            evict(engine, added)
        reference = results[specs[0].label]
        scores = {label: scorer(example, r.text) for label, r in results.items()}
        for label, r in results.items():
            tallies[label].add(r, reference, scores[label])
        records.append({"id": example["id"], "num_chunks": len(keys),
                        "num_prompt_tokens": reference.num_prompt_tokens,
                        "answers": {label: r.text for label, r in results.items()},
                        "scores": scores})
    if progress:
        progress(1.0, "done")
    return {label: t.summary() for label, t in tallies.items()}, records


def run_accuracy(engine: Engine, examples: list[dict[str, Any]],
                 algorithms: str | list[str] | tuple[str, ...] | None = None,
                 max_chunks: int | None = None, max_new_tokens: int | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The accuracy benchmark over examples in the shared schema -> a JSON-ready dict.

    Keys: algorithms (label -> the `_Tally.summary` fields), examples (per-example answers
    and scores), n, skipped (examples over the context limit), dataset, task, model, device,
    dtype, max_chunks, chunks_note,
    max_new_tokens, context_tokens_mean, prompts, prefix_cache_note, wall_s. The engine's
    prefix cache is cleared first, so prefix_cache sees only this run's earlier requests.
    """
    specs = parse_algorithms(algorithms or DEFAULT_ALGORITHMS)
    if max_chunks is not None and max_chunks < 1:
        raise ValueError(f"max_chunks must be >= 1, got {max_chunks}")
    start = time.perf_counter()
    engine.prefix_cache.clear()
    examples, skipped = fitting(engine, examples, max_chunks, max_new_tokens)
    summary, records = evaluate(engine, examples, specs, task_score, max_chunks, max_new_tokens,
                                progress)
    capped = sum(1 for e in examples if max_chunks and len(e["chunks"]) > max_chunks)
    tasks = sorted({e["task"] for e in examples})
    return {
        "benchmark": "accuracy",
        "dataset": ",".join(sorted({e["dataset"] for e in examples})),
        "task": ",".join(tasks),
        **engine_info(engine),
        "n": len(examples),
        "skipped": skipped,  # ids of examples over the context limit, left out
        "max_chunks": max_chunks,
        "chunks_note": (f"chunks capped to the first {max_chunks} in {capped} of "
                        f"{len(examples)} examples" if capped else None),
        "max_new_tokens": {t: answer_tokens(t, max_new_tokens) for t in tasks},
        "context_tokens_mean": statistics.fmean(r["num_prompt_tokens"] for r in records),
        "prompts": {t: {"prefix": PROMPTS[t].prefix, "question": PROMPTS[t].question}
                    for t in tasks},
        "reference": REFERENCE,
        "prefix_cache_note": PREFIX_CACHE_NOTE,
        "algorithms": summary,
        "examples": records,
        "wall_s": time.perf_counter() - start,
    }


PREFIX_CACHE_NOTE = (
    "prefix_cache reuses the K/V of the longest token prefix shared with one of its own earlier "
    "requests in this run (the engine keeps the most recent few; it is cleared when the run "
    "starts). Every request has the same system prompt, so what it reuses is the chat "
    "template head and the instruction; the chunks differ between examples and are computed "
    "afresh (reused_tokens_mean says how many tokens it reused).")

