"""The link invariants of DESIGN §5, on the check's device, in fp32 and bf16.

On one prompt (three chunks behind the QA system prompt, in an order that puts none at
position 0):
- LegoLink with k over every chunk's length equals full recompute;
- CacheBlend with ratio 1 equals full recompute;
- QueryLink with k = 0 equals naive, and reports the same mask.
"Equals": the first answer token's log-probabilities lie within the bound and the 8 greedy
tokens are the same. Bounds: fp32 1e-4; bf16: how far bf16 full recompute lies from fp32 full
recompute on the same prompt (the rounding bf16 brings by itself).
"""

from __future__ import annotations

from typing import Any

from bench.accuracy import PROMPTS
from engine import Engine, Kind, RunResult

FP32_BOUND = 1e-4
NEW_TOKENS = 8


def _diff(a: RunResult, b: RunResult) -> float:
    return float((a.first_token_logprobs - b.first_token_logprobs).abs().max())


def _row(name: str, got: RunResult, want: RunResult, bound: float, extra_ok: bool = True,
         ) -> dict[str, Any]:
    diff = _diff(got, want)
    same = got.token_ids == want.token_ids
    return {"invariant": name, "max_abs_logprob_diff": diff, "bound": bound,
            "tokens_equal": same, "passed": diff <= bound and same and extra_ok}


def check_invariants(engine: Engine, chunks: list[str], question: str,
                     full_fp32: RunResult | None = None) -> tuple[list[dict[str, Any]], RunResult]:
    """Every invariant on one engine -> (rows, its full-recompute run). `full_fp32`: the fp32
    engine's full recompute of the same prompt, which sets the bf16 bound."""
    prompt = PROMPTS["qa"]
    keys = [engine.compile(text) for text in chunks]
    order = keys[1:] + keys[:1]
    request = {"prefix": prompt.prefix, "chunks": order,
               "question": prompt.question.format(question=question),
               "max_new_tokens": NEW_TOKENS}
    full = engine.run(**request, algorithm="full_recompute")
    if full_fp32 is None:
        bound = FP32_BOUND
    else:
        bound = _diff(full, full_fp32)
    longest = max(len(c.token_ids) for c in full.layout.chunks)
    lego = engine.run(**request, algorithm="legolink", recompute_k=longest)
    every = all(lego.mask[p] == Kind.RECOMPUTED for c in full.layout.chunks
                for p in range(c.start, c.end))
    blend = engine.run(**request, algorithm="cacheblend", recompute_ratio=1.0)
    naive = engine.run(**request, algorithm="naive")
    query0 = engine.run(**request, algorithm="querylink", recompute_k=0)
    rows = [
        _row(f"legolink-{longest} (k >= every chunk) = full_recompute", lego, full, bound,
             every),
        _row("cacheblend-100 = full_recompute", blend, full, bound),
        _row("querylink-0 = naive (same mask)", query0, naive, bound,
             query0.mask == naive.mask),
    ]
    for row in rows:
        row.update({"model": engine.model.model_id, "dtype": engine.config.dtype,
                    "num_prompt_tokens": full.num_prompt_tokens})
    for key in keys:
        engine.store.evict(key)
    return rows, full
