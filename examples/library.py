"""Compile three documents once, link them behind two prefixes in two orders, compare.

    .venv/bin/python examples/library.py
"""

from __future__ import annotations

from engine import Engine, EngineConfig

DOCS = [
    "Harbor Lights is a bakery on Pier Street. It was founded in 1987 by Ines Okafor.",
    "The Pier Street ferry leaves every 40 minutes and crosses to Gull Island in 12 minutes.",
    "Gull Island has one school, a lighthouse built in 1901, and about 300 residents.",
]

engine = Engine(EngineConfig())  # bundled SmolLM2-135M-Instruct, CPU fp32 (CUDA bf16 if present)
keys = [engine.compile(d) for d in DOCS]  # each compiled once, at positions 0..T-1
for prefix in ("You are a careful assistant.", "Answer in a few words."):
    for order in (keys, keys[::-1]):
        print(f"\n[{prefix}] order {[keys.index(k) for k in order]}")
        for algorithm in ("full_recompute", "prefix_cache", "naive", "cacheblend", "legolink"):
            out = engine.run(prefix=prefix, chunks=order, question="Who founded Harbor Lights?",
                             algorithm=algorithm, max_new_tokens=16)
            print(f"  {out.algorithm:15s} {out.ttft_ms:7.1f} ms  recomputed "
                  f"{out.num_recomputed:4d}/{out.num_prompt_tokens}  {out.text!r}")
print("\nchunks compiled:", engine.store.stats().num_compiled)
