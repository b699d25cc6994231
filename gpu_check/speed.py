"""The speed sweep on the check's device: bench.speed's benchmark, its JSON as `python -m bench
speed` writes it (the figure is drawn afterwards, here: gpu_check/figures.py)."""

from __future__ import annotations

from typing import Any

from bench.speed import run_speed
from engine import Engine

ALGORITHMS = ("full_recompute", "prefix_cache", "naive", "cacheblend-15", "legolink-2",
              "legolink-16", "querylink-16")
LENGTHS, DRY_LENGTHS = (512, 1024, 2048, 4096, 8192), (256, 512)


def run_sweep(engine: Engine, dry: bool) -> dict[str, Any]:
    """TTFT per algorithm up to 8K tokens, throughput, KV bytes -> run_speed's dict plus the
    check's verdict: the run finished and the KV bytes match the formula."""
    if dry:  # small chunks and a short stream: a CPU rehearsal of the same code
        result = run_speed(engine, DRY_LENGTHS, repeats=1, algorithms=ALGORITHMS,
                           chunk_tokens=96, requests=4, pool_size=4, request_chunks=3)
    else:
        result = run_speed(engine, LENGTHS, repeats=5, algorithms=ALGORITHMS, requests=16)
    result["checks"] = [{"check": "KV bytes per chunk = tokens x bytes per token",
                         "value": result["kv"]["bytes_per_token"], "bound": None,
                         "passed": bool(result["kv"]["bytes_match_formula"])}]
    result["passed"] = all(c["passed"] for c in result["checks"])
    return result

