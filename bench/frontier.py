"""The fidelity-cost frontier: first-token KL from full recompute against median TTFT, one point
per algorithm setting (naive, legolink0, APE, legolink-{2,8,16,32}, cacheblend-{5,15,30} and
cacheblend-key-15, querylink at several budgets, prophetkv-16 and infoflow-16), per context
length.

Each context length is one block of examples: a data file's examples capped to C chunks, or
needle haystacks of C chunks. Every block runs through `bench.accuracy.evaluate` (all
algorithms on the same compiled chunks, full recompute first), so the points of one block are
comparable. Each block also checks querylink's target against the baselines measured with it,
and which methods reach the frontier's lower-left corner (`corner`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.accuracy import Scorer, evaluate, fitting, task_score
from bench.common import Progress, engine_info
from bench.needle import make_needle_examples, needle_score
from engine import NAIVE, REFERENCE, Engine, parse_algorithms, split_label

FRONTIER_ALGORITHMS = (
    "full_recompute", "naive", "legolink0", "ape", "legolink-2", "legolink-8", "legolink-16",
    "legolink-32", "cacheblend-5", "cacheblend-15", "cacheblend-30", "cacheblend-key-15",
    "querylink-4", "querylink-8", "querylink-16", "querylink-32", "prophetkv-16", "infoflow-16")

# The target querylink is held to (issue 12): with a recompute count within MATCH of
# BUDGET_REFERENCE's, a mean first-token KL at most KL_REFERENCE's and a median TTFT at most
# MAX_TTFT_RATIO times BUDGET_REFERENCE's.
TARGET, BUDGET_REFERENCE, KL_REFERENCE = "querylink", "legolink-16", "cacheblend-15"
MATCH, MAX_TTFT_RATIO = 0.05, 1.25


def count_gap(row: dict[str, float], budget: dict[str, float]) -> float:
    """How far a setting's recompute share is from the budget reference's, relative: a
    setting within MATCH of it recomputes "the same count" (budget["recompute_share"] > 0)."""
    return abs(row["recompute_share"] / budget["recompute_share"] - 1)


def target(rows: dict[str, dict[str, float]]) -> dict[str, Any] | None:
    """querylink's target in one block: the querylink setting whose recompute share is closest
    to legolink-16's (within ±5%), its KL against cacheblend-15's and its TTFT ratio to
    legolink-16's. None when the block lacks one of them."""
    if BUDGET_REFERENCE not in rows or KL_REFERENCE not in rows:
        return None
    budget = rows[BUDGET_REFERENCE]
    matched = [(count_gap(row, budget), label) for label, row in rows.items()
               if split_label(label)[0] == TARGET and budget["recompute_share"] > 0]
    matched = [m for m in matched if m[0] <= MATCH]
    if not matched:
        return None
    label = min(matched)[1]
    row = rows[label]
    ttft_ratio = row["ttft_ms_median"] / budget["ttft_ms_median"]
    return {
        "algorithm": label,
        "recompute_ratio": row["recompute_share"] / budget["recompute_share"],
        "first_token_kl": row["first_token_kl"],
        "kl_reference": KL_REFERENCE,
        "kl_reference_value": rows[KL_REFERENCE]["first_token_kl"],
        "kl_met": row["first_token_kl"] <= rows[KL_REFERENCE]["first_token_kl"],
        "ttft_reference": BUDGET_REFERENCE,
        "ttft_ratio": ttft_ratio,
        "ttft_met": ttft_ratio <= MAX_TTFT_RATIO,
        "agreement": row["agreement"],
        "score": row["score"],
    }


# The frontier's lower-left corner (issue 21), per block: some method at no more than
# FAST_TTFT_RATIO x naive's median TTFT with a KL no higher than BUDGET_REFERENCE's ("fast"),
# and some method at BUDGET_REFERENCE's cost (median TTFT within MAX_TTFT_RATIO of its) with at
# most HALF_KL of its KL ("half"; the goal asks for one on every task).
FAST_TTFT_RATIO, HALF_KL = 1.2, 0.5


def corner(rows: dict[str, dict[str, float]]) -> dict[str, Any] | None:
    """The methods in the frontier's lower-left corner of one block; None when it lacks naive
    or legolink-16."""
    if NAIVE not in rows or BUDGET_REFERENCE not in rows:
        return None
    naive, budget = rows[NAIVE], rows[BUDGET_REFERENCE]
    others = {label: row for label, row in rows.items()
              if label not in (REFERENCE, NAIVE, BUDGET_REFERENCE)}
    return {
        "fast": [label for label, row in others.items()
                 if row["ttft_ms_median"] <= FAST_TTFT_RATIO * naive["ttft_ms_median"]
                 and row["first_token_kl"] <= budget["first_token_kl"]],
        "half": [label for label, row in others.items()
                 if row["ttft_ms_median"] <= MAX_TTFT_RATIO * budget["ttft_ms_median"]
                 and row["first_token_kl"] <= HALF_KL * budget["first_token_kl"]],
        "naive_ttft_ms": naive["ttft_ms_median"],
        "budget_kl": budget["first_token_kl"],
        "budget_ttft_ms": budget["ttft_ms_median"],
    }


def corner_text(found: dict[str, Any] | None) -> str:
    """The corner of one block in a sentence ("" without one)."""
    if not found:
        return ""
    return (f" Lower-left corner: at most {FAST_TTFT_RATIO}x naive's TTFT "
            f"({found['naive_ttft_ms']:.0f} ms) with a KL at most {BUDGET_REFERENCE}'s "
            f"({found['budget_kl']:.4f}): {', '.join(found['fast']) or 'none'}; at "
            f"{BUDGET_REFERENCE}'s cost (TTFT within {MAX_TTFT_RATIO}x its "
            f"{found['budget_ttft_ms']:.0f} ms) with half its KL: "
            f"{', '.join(found['half']) or 'none'}.")


def run_frontier(engine: Engine, examples: list[dict[str, Any]],
                 num_chunks: tuple[int, ...] = (6,),
                 algorithms: str | list[str] | tuple[str, ...] | None = None,
                 needle: bool = False, limit: int = 20, seed: int = 0, chunk_words: int = 150,
                 max_new_tokens: int | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The frontier -> a JSON-ready dict.

    `examples` are the data (capped to C chunks for each C in `num_chunks`, the first `limit`
    of them), or with `needle` the passages that build `limit` haystacks of C chunks each.
    Keys: lengths ("6", ...: num_chunks, n, context_tokens_mean, algorithms (label -> the
    accuracy summary: score, agreement, first_token_kl, ttft_ms_median, recompute_share, ...),
    skipped, target, examples), algorithms (the labels), dataset, task, model, device, dtype,
    needle, limit, reference, target_rule, wall_s.
    """
    specs = parse_algorithms(algorithms or FRONTIER_ALGORITHMS)
    if not examples:
        raise ValueError("no examples to evaluate")
    if not num_chunks or min(num_chunks) < 1:
        raise ValueError(f"chunk counts must be >= 1, got {num_chunks}")
    start = time.perf_counter()
    engine.prefix_cache.clear()
    passages = list(dict.fromkeys(c for e in examples for c in e["chunks"])) if needle else []
    lengths = {}
    for j, c in enumerate(num_chunks):
        new_tokens = max_new_tokens or (16 if needle else None)
        block, skipped = fitting(
            engine, make_needle_examples(passages, c, limit, seed, chunk_words) if needle
            else examples, c, new_tokens, limit)
        scorer: Scorer = needle_score if needle else task_score
        summary, records = evaluate(engine, block, specs, scorer, max_chunks=c,
                                    max_new_tokens=new_tokens,
                                    progress=_step(progress, j, len(num_chunks), c))
        lengths[str(c)] = {
            "num_chunks": c,
            "n": len(block),
            "skipped": skipped,  # ids of examples over the context limit, left out
            "context_tokens_mean": statistics.fmean(r["num_prompt_tokens"] for r in records),
            "algorithms": summary,
            "target": target(summary),
            "corner": corner(summary),
            "examples": records,
        }
    return {
        "benchmark": "frontier",
        "dataset": "needle" if needle else ",".join(sorted({e["dataset"] for e in examples})),
        "task": "qa" if needle else ",".join(sorted({e["task"] for e in examples})),
        **engine_info(engine),
        "needle": needle,
        "limit": limit,
        "reference": REFERENCE,
        "algorithms": [s.label for s in specs],
        "target_rule": (f"the querylink setting within ±{MATCH:.0%} of {BUDGET_REFERENCE}'s "
                        f"recompute share: first-token KL <= {KL_REFERENCE}'s and median TTFT "
                        f"<= {MAX_TTFT_RATIO}x {BUDGET_REFERENCE}'s"),
        "lengths": lengths,
        "wall_s": time.perf_counter() - start,
    }


def _step(progress: Progress | None, j: int, num_blocks: int,
          c: int) -> Callable[[float, str], None]:
    def step(fraction: float, text: str) -> None:
        if progress:
            progress((j + fraction) / num_blocks, f"{c} chunks: {text}")
    return step
