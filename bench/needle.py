"""Needle in a haystack: a sentence carrying a random number hidden in one of C chunks.

The chunks are built from any data file's passages (joined and cut to `chunk_words` words,
~240 tokens by default, so 6 to 16 chunks span ~1.5K to ~4K tokens). A
seeded generator picks the passages, the number, the chunk and the sentence boundary, so a
seed always gives the same examples. The score is whether the number appears in the answer.
On a small model, this separates the algorithms where multi-hop QA scores are near zero.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from typing import Any

from bench.accuracy import evaluate
from bench.common import Progress, engine_info
from engine import DEFAULT_ALGORITHMS, REFERENCE, Engine, parse_algorithms

NEEDLE = "The secret code is {code}."
QUESTION = "What is the secret code?"
_SENTENCE_END = re.compile(r"[.!?]\s+")


def make_needle_examples(passages: list[str], num_chunks: int, n: int, seed: int = 0,
                         chunk_words: int = 150) -> list[dict[str, Any]]:
    """n examples in the shared schema (task "qa"), each with `num_chunks` chunks, one of
    which holds the needle sentence. Extra keys: needle_chunk (its index in "chunks") and
    needle_code (the number, also the gold answer)."""
    if num_chunks < 1 or n < 1 or chunk_words < 1:
        raise ValueError("num_chunks, n and chunk_words must be >= 1")
    if not passages:
        raise ValueError("no passages to build a haystack from")
    rng = random.Random(seed * 1_000_003 + num_chunks)  # each size its own stream
    examples = []
    for i in range(n):
        chunks = [_haystack_chunk(passages, chunk_words, rng) for _ in range(num_chunks)]
        code = rng.randrange(10_000, 100_000)
        where = rng.randrange(num_chunks)
        text = chunks[where]
        boundary = rng.choice([0] + [m.end() for m in _SENTENCE_END.finditer(text)])
        chunks[where] = text[:boundary] + NEEDLE.format(code=code) + " " + text[boundary:]
        examples.append({"id": f"needle-{num_chunks}-{seed}-{i}", "dataset": "needle",
                         "task": "qa", "chunks": chunks, "question": QUESTION,
                         "answers": [str(code)], "needle_chunk": where, "needle_code": code})
    return examples


def _haystack_chunk(passages: list[str], chunk_words: int, rng: random.Random) -> str:
    """Random passages joined, cut to exactly `chunk_words` words (passages vary a lot in
    length; the cut keeps every chunk, and so each context, the size asked for)."""
    lines: list[str] = []
    words = 0
    while words < chunk_words:
        line = rng.choice(passages).split()[: chunk_words - words]  # newlines become spaces
        lines.append(" ".join(line))
        words += len(line)
    return "\n".join(lines)


def needle_score(example: dict[str, Any], answer: str) -> float:
    """1.0 when the needle's number appears in the answer (thousands separators ignored)."""
    return float(str(example["needle_code"]) in answer.replace(",", ""))


def run_needle(engine: Engine, passages: list[str], num_chunks: tuple[int, ...] = (6, 16),
               limit: int = 20, algorithms: str | list[str] | tuple[str, ...] | None = None,
               seed: int = 0, chunk_words: int = 150, max_new_tokens: int = 16,
               progress: Progress | None = None) -> dict[str, Any]:
    """The needle benchmark -> a JSON-ready dict.

    Keys: sizes ("6", "16", ...: each with context_tokens_mean, algorithms (label -> score,
    agreement, first_token_agreement, first_token_kl, TTFT, recompute_share, ...) and
    examples), plus model, device, dtype, seed, limit, chunk_words, needle, question, wall_s.
    """
    specs = parse_algorithms(algorithms or DEFAULT_ALGORITHMS)
    start = time.perf_counter()
    engine.prefix_cache.clear()
    sizes = {}
    for j, c in enumerate(num_chunks):
        examples = make_needle_examples(passages, c, limit, seed, chunk_words)

        def step(fraction: float, text: str, j: int = j, c: int = c) -> None:
            if progress:
                progress((j + fraction) / len(num_chunks), f"{c} chunks: {text}")

        summary, records = evaluate(engine, examples, specs, needle_score,
                                    max_new_tokens=max_new_tokens, progress=step)
        for record, example in zip(records, examples, strict=True):
            record["needle_chunk"] = example["needle_chunk"]
            record["needle_code"] = example["needle_code"]
        sizes[str(c)] = {
            "num_chunks": c,
            "context_tokens_mean": statistics.fmean(r["num_prompt_tokens"] for r in records),
            "algorithms": summary,
            "examples": records,
        }
    return {"benchmark": "needle", **engine_info(engine), "seed": seed, "limit": limit,
            "chunk_words": chunk_words, "needle": NEEDLE, "question": QUESTION,
            "max_new_tokens": max_new_tokens, "reference": REFERENCE, "sizes": sizes,
            "wall_s": time.perf_counter() - start}
