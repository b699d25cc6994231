"""Compose tab handlers: link chosen chunks behind a prefix, run the algorithms side by side.

The reference (full_recompute) always runs first: "matches" and the first-token KL are
measured against it (engine/fidelity.py). When it is not among the chosen algorithms it runs
anyway but is left out of the results.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import gradio as gr
import pandas as pd

from app.errors import user_errors
from engine import Engine, Request
from engine.algorithms import ALGORITHMS, REFERENCE
from engine.fidelity import measure as fidelity
from engine.generate import RunResult
from engine.link import Kind
from engine.prompt import Layout
from visualize.mask import recompute_mask_strip
from visualize.ttft import ttft_bars

TABLE_HEADERS = ["algorithm", "answer", "matches full recompute", "first-token KL",
                 "TTFT (ms)", "tokens computed", "tokens reused"]


def make_requests(engine: Engine, prefix: str | None, chunks: Sequence[str] | None,
                  question: str | None, algorithms: Sequence[str] | None, k: Any, ratio: Any,
                  max_new_tokens: Any) -> list[Request]:
    """The Compose inputs (from the UI or the API) as one engine Request per chosen algorithm,
    the reference first (run even when not chosen). The engine checks them; a ValueError
    names the first problem."""
    chosen = choose_algorithms(algorithms)
    return [engine.request(prefix=prefix, chunks=chunks, question=question, algorithm=name,
                           recompute_k=k, recompute_ratio=ratio, max_new_tokens=max_new_tokens)
            for name in [REFERENCE, *[a for a in chosen if a != REFERENCE]]]


def choose_algorithms(algorithms: Sequence[str] | None) -> list[str]:
    """The chosen algorithms in the canonical order; unknown names are refused."""
    chosen = list(algorithms or [])
    unknown = [a for a in chosen if a not in ALGORITHMS]
    if unknown:
        raise ValueError(f"unknown algorithm {unknown[0]!r}: choose from {', '.join(ALGORITHMS)}")
    if not chosen:
        raise ValueError("choose at least one algorithm")
    return [a for a in ALGORITHMS if a in chosen]


def prompt_tokens(engine: Engine, result: RunResult) -> list[str]:
    """The prompt decoded token by token, for hover labels."""
    return [engine.tokenizer.decode([t]) for t in result.layout.token_ids]


def measure(result: RunResult, reference: RunResult) -> dict[str, Any]:
    """One run against the reference: its answer, agreement (engine/fidelity.py), TTFT, token
    counts and mask ("0" new, "1" cached, "2" recomputed per prompt position)."""
    f = fidelity(result, reference)
    return {"algorithm": result.algorithm, "text": result.text,
            "matches_full_recompute": f.answer_match,
            "first_token_kl": round(f.first_token_kl, 4), "ttft_ms": round(result.ttft_ms, 1),
            "tokens_computed": f.counts.num_computed, "tokens_reused": f.counts.num_cached,
            "recompute_share": result.recompute_share,
            "mask": "".join(str(m) for m in result.mask)}


def _row(m: dict[str, Any]) -> list:
    if m["algorithm"] == REFERENCE:
        match = "reference"
    else:
        match = "✓ same" if m["matches_full_recompute"] else "✗ differs"
    return [m["algorithm"], m["text"], match, m["first_token_kl"], m["ttft_ms"],
            m["tokens_computed"], m["tokens_reused"]]


def _table(rows: Iterable[list]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=TABLE_HEADERS)


def _reuse(engine: Engine, layout: Layout, hits_before: dict[str, int], compiled_before: int,
           shown: list[RunResult]) -> tuple[str, dict]:
    """What this run took from the store (hits, compiles) and what prefix_cache reused."""
    stats = engine.store.stats()
    hits_after = {c.key: c.hits for c in stats.chunks}
    chunks = [{"key": seg.key, "title": seg.title, "hits_before": hits_before.get(seg.key, 0),
               "hits_after": hits_after.get(seg.key, 0)} for seg in layout.chunks]
    compiled = stats.num_compiled - compiled_before
    hits = ", ".join(f"C{i} {c['hits_before']}→{c['hits_after']}" for i, c in enumerate(chunks, 1))
    lines = [f"**Reuse:** {len(chunks)} chunk(s) linked from the store, **{compiled}** compiled "
             f"during this run (compile passes so far: {stats.num_compiled}). Hits: {hits}."]
    for r in shown:
        if r.algorithm == "prefix_cache":
            reused = sum(1 for m in r.mask if m == Kind.CACHED)
            lines.append(f"prefix_cache reused **{reused}** of {r.num_prompt_tokens} prompt "
                         "tokens: it needs an identical token prefix from an earlier request.")
    report = {"prompt_tokens": layout.num_tokens, "compiled_during_run": compiled,
              "num_compiled": stats.num_compiled, "chunks": chunks}
    return "  \n".join(lines), report


@user_errors
def run_compare(engine: Engine, prefix: str, chunks: list[str], question: str,
                algorithms: list[str], k: float, ratio: float,
                max_new_tokens: float) -> Iterator[tuple]:
    """Run each chosen algorithm on one prompt, streaming answers into the results table.

    Yields (table, TTFT figure, mask figure, reuse summary, report); figures and summaries
    are `gr.skip()` until they change. The last yield holds everything; the report is a dict
    with one entry per shown algorithm (text, match, KL, TTFT, token counts).
    """
    requests = make_requests(engine, prefix, chunks, question, algorithms, k, ratio,
                             max_new_tokens)
    chosen = choose_algorithms(algorithms)
    before = engine.store.stats()
    hits_before = {c.key: c.hits for c in before.chunks}
    measured: list[dict[str, Any]] = []
    shown: list[RunResult] = []
    reference: RunResult | None = None
    tokens: list[str] = []
    skip = gr.skip()
    for request in requests:
        name, label = request.algorithm.name, request.algorithm.label
        result = None
        for piece in engine.stream_request(request):
            result = piece.result
            if result is None and name in chosen:
                partial = [label, piece.text + " ▌", "…", None, None, None, None]
                yield _table([*map(_row, measured), partial]), skip, skip, skip, skip
        reference = reference or result
        tokens = tokens or prompt_tokens(engine, result)
        if name in chosen:
            shown.append(result)
            measured.append(measure(result, reference))
            yield (_table(map(_row, measured)), ttft_bars(shown),
                   recompute_mask_strip(shown, tokens), skip, skip)
    summary, report = _reuse(engine, reference.layout, hits_before, before.num_compiled, shown)
    report["results"] = measured
    yield (_table(map(_row, measured)), ttft_bars(shown), recompute_mask_strip(shown, tokens),
           summary, report)


def order_preview(engine: Engine, chunks: list[str] | None) -> str:
    """The chosen chunks as a numbered list, in prompt order."""
    if not chunks:
        return "*No chunks chosen yet: pick them above, in the order the prompt should use.*"
    stored = {c.key: c for c in engine.store.stats().chunks}
    lines = []
    for number, key in enumerate(chunks, 1):
        info = stored.get(key)
        if info:
            lines.append(f"{number}. {info.title} ({info.num_tokens} tokens)")
        elif engine.store.evicted_token_ids(key):
            lines.append(f"{number}. `{key[:12]}` — evicted: recompiled when the prompt runs")
        else:
            lines.append(f"{number}. `{key[:12]}` — not in the store: compile it again")
    steps = " → ".join(f"C{i}" for i in range(1, len(chunks) + 1))
    return f"**Prompt order:** prefix → {steps} → question  \n" + "  \n".join(lines)


def request_summary(prefix: str | None, chunks: list[str] | None, question: str | None) -> str:
    """One line naming the Compose tab's request, shown where another tab uses it."""
    return (f"**Request from the Compose tab:** prefix “{(prefix or '(none)')[:80]}” · "
            f"{len(chunks or [])} chunk(s) · question “{(question or '')[:80]}”")


def reverse_order(chunks: list[str] | None) -> list[str]:
    """The same chunks, last first."""
    return list(reversed(chunks or []))


def rotate_order(chunks: list[str] | None) -> list[str]:
    """The same chunks with the first moved to the end."""
    chunks = list(chunks or [])
    return chunks[1:] + chunks[:1]

