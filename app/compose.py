"""Compose tab handlers: link chosen chunks behind a prefix, run the algorithms side by side.

The reference (full_recompute) always runs first: agreement and the first-token KL are
measured against it by token ids (the engine's `measure`, as the benchmarks count). When it is
not among the chosen algorithms it runs anyway but is left out of the results. The algorithms'
parameters arrive as `k`, `ratio` (the endpoint's inputs since its first release) and, for
those declared since, as keywords after the other inputs (app/controls.py `with_knobs`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import gradio as gr
import pandas as pd

from app import notes
from app.errors import user_errors
from app.lab import Lab
from app.planning import choose_algorithms, plan_runs
from app.render import answer_diff_html, md
from app.verdict import cards_html, verdicts, verdicts_markdown
from engine import REFERENCE, Fidelity, RunResult, measure
from visualize.mask import recompute_mask_strip
from visualize.ttft import ttft_bars

# Gradio finds a Progress default in a handler's signature and passes a live tracker per event;
# called directly (tests, the MCP tools), this one does nothing.
PROGRESS = gr.Progress()
NUM_OUTPUTS = 8  # run_compare's: table, answers, TTFT, mask, reuse, verdicts, cards, report
TABLE_HEADERS = ["algorithm", "answer", "first token", "whole answer", "same tokens",
                 "first-token KL", "TTFT (ms)", "computed", "reused"]


def retitled(result: RunResult, titles: dict[str, str]) -> RunResult:
    """The result with its chunks named as this visitor knows them."""
    segments = tuple(replace(s, title=titles.get(s.key, s.title)) if s.kind == "chunk" else s
                     for s in result.layout.segments)
    return replace(result, layout=replace(result.layout, segments=segments))


def prompt_tokens_text(lab: Lab, result: RunResult) -> list[str]:
    """The prompt decoded token by token, for hover labels."""
    return [lab.engine.tokenizer.decode([t]) for t in result.layout.token_ids]


def report_row(result: RunResult, reference: RunResult) -> dict[str, Any]:
    """One run against the reference: answer, agreement by token ids, KL, TTFT, counts and
    mask ("0" new, "1" cached, "2" recomputed per prompt position)."""
    f = measure(result, reference)
    return {"algorithm": result.algorithm, "text": result.text,
            "first_token_match": f.first_token_match, "answer_match": f.answer_match,
            "same_tokens": _same(f, result), "num_tokens": len(result.token_ids),
            "first_token_kl": round(f.first_token_kl, 4), "ttft_ms": round(result.ttft_ms, 1),
            "tokens_computed": f.counts.num_computed, "tokens_reused": f.counts.num_cached,
            "recompute_share": result.recompute_share,
            "mask": "".join(str(m) for m in result.mask)}


def _same(f: Fidelity, result: RunResult) -> int:
    """Answer tokens equal to the reference's before the first difference."""
    return len(result.token_ids) if f.first_difference is None else f.first_difference


def _row(m: dict[str, Any]) -> list:
    if m["algorithm"] == REFERENCE:
        first = whole = "reference"
    else:
        first = "✓ same" if m["first_token_match"] else "✗ differs"
        whole = "✓ same" if m["answer_match"] else "✗ differs"
    return [m["algorithm"], m["text"], first, whole, f"{m['same_tokens']} of {m['num_tokens']}",
            m["first_token_kl"], m["ttft_ms"], m["tokens_computed"], m["tokens_reused"]]


def _table(rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=TABLE_HEADERS)


def answers_html(lab: Lab, shown: list[RunResult], reference: RunResult) -> str:
    """Each shown answer token by token, tokens unlike the reference's marked."""
    decode = lab.engine.tokenizer.decode
    rows = []
    for r in shown:
        tokens = [decode([t]) for t in r.token_ids]
        ref = reference.token_ids
        differs = [i >= len(ref) or t != ref[i] for i, t in enumerate(r.token_ids)]
        rows.append((r.algorithm, tokens, differs))
    return answer_diff_html(rows)


def _reuse(lab: Lab, result: RunResult, hits_before: dict[str, int], stored_before: set[str],
           shown: list[RunResult]) -> tuple[str, dict]:
    """What this run took from the store (its hits, the chunks it had to recompile) and what
    prefix_cache reused: this run's own numbers, never the store's totals."""
    hits_after = {c.key: c.hits for c in lab.engine.store.stats().chunks}
    chunks = [{"key": seg.key, "title": seg.title,
               "hits": hits_after.get(seg.key, 0) - hits_before.get(seg.key, 0)}
              for seg in result.layout.chunks]
    compiled = len({seg.key for seg in result.layout.chunks} - stored_before)
    hits = ", ".join(f"C{i} +{c['hits']}"
                     for i, c in enumerate(chunks[:12], 1)) + (", …" if len(chunks) > 12 else "")
    lines = [f"**Reuse:** {len(chunks)} chunk(s) linked from the store, **{compiled}** compiled "
             f"during this run. Hits by this run: {hits}."]
    lines += notes.for_results(lab.engine, shown)
    report = {"prompt_tokens": result.layout.num_tokens, "compiled_during_run": compiled,
              "chunks": chunks}
    return "  \n".join(lines), report


@user_errors
def run_compare(lab: Lab, session: str, prefix: str, chunks: list[str], question: str,
                algorithms: list[str], k: float, ratio: float, max_new_tokens: float,
                progress: gr.Progress = PROGRESS, **knobs: float) -> Iterator[tuple]:
    """Run each chosen algorithm on one prompt, streaming answers into the results table.

    Yields (table, answers token by token, TTFT figure, mask figure, reuse summary, verdicts,
    cards, report); outputs are `gr.skip()` until they change. The last yield holds
    everything; the report has one entry per shown algorithm (text, first-token and
    whole-answer match by token ids, same tokens, KL, TTFT, token counts), the verdicts, one
    sentence per algorithm (app/verdict.py), the request's prefix and question and the
    reference's TTFT; the cards show the table on narrow screens. The page's progress bar
    names each run as it starts ("2/6 legolink-16"), the reference included.
    """
    plan = plan_runs(lab, session, prefix, chunks, question, algorithms,
                     {"k": k, "ratio": ratio, **knobs}, max_new_tokens, ensure=True)
    requests, chosen = plan.requests, choose_algorithms(algorithms)
    titles = lab.titles(session)
    before = lab.engine.store.stats()
    hits_before = {c.key: c.hits for c in before.chunks}
    measured: list[dict[str, Any]] = []
    shown: list[RunResult] = []
    reference: RunResult | None = None
    tokens: list[str] = []
    results: list[RunResult] = []
    skip = gr.skip()
    with lab.estimator.timed(lab.admission.within_budget(plan.estimate)) as timer:
        for index, request in enumerate(requests):
            label = request.algorithm.label
            progress(index / len(requests), desc=f"{index + 1}/{len(requests)} {label}")
            # Every request is a chosen one but the reference, which runs anyway.
            show = request.algorithm.name != REFERENCE or REFERENCE in chosen
            result = None
            for piece in lab.engine.stream_request(request):
                result = piece.result
                if result is None and show:
                    partial = [label, piece.text + " ▌", "…", "…", None, None, None, None, None]
                    yield (_table([*map(_row, measured), partial]),
                           *(skip,) * (NUM_OUTPUTS - 1))
            result = retitled(result, titles)
            results.append(result)
            timer.actual = plan.spent(results, lab.engine.model.spec.num_layers)
            reference = reference or result
            tokens = tokens or prompt_tokens_text(lab, result)
            if show:
                shown.append(result)
                measured.append(report_row(result, reference))
                yield (_table(list(map(_row, measured))), answers_html(lab, shown, reference),
                       ttft_bars(shown), recompute_mask_strip(shown, tokens), skip,
                       verdicts_markdown(measured, reference.ttft_ms),
                       cards_html(measured, reference.ttft_ms), skip)
    summary, report = _reuse(lab, reference, hits_before, {c.key for c in before.chunks}, shown)
    report["results"] = measured
    report["verdicts"] = verdicts(measured, reference.ttft_ms)
    report.update(prefix=prefix, question=question,
                  reference_ttft_ms=round(reference.ttft_ms, 1))
    yield (_table(list(map(_row, measured))), answers_html(lab, shown, reference),
           ttft_bars(shown), recompute_mask_strip(shown, tokens), summary,
           verdicts_markdown(measured, reference.ttft_ms), cards_html(measured, reference.ttft_ms),
           report)


def order_preview(lab: Lab, session: str, chunks: list[str] | None) -> str:
    """The chosen chunks as a numbered list, in prompt order (titles escaped)."""
    if not chunks:
        return "*No chunks chosen yet: pick them above, in the order the prompt should use.*"
    titles, visible = lab.titles(session), lab.libraries.visible(session)
    store = lab.engine.store
    lines = []
    for number, key in enumerate(chunks, 1):
        if not isinstance(key, str) or key not in visible:
            lines.append(f"{number}. {md(str(key)[:12])} — not in your library")
        elif key in store:
            lines.append(f"{number}. {md(titles.get(key, ''))} "
                         f"({store.peek(key).num_tokens} tokens)")
        else:
            lines.append(f"{number}. {md(titles.get(key, ''))} — evicted: recompiled when the "
                         "prompt runs")
    steps = " → ".join(f"C{i}" for i in range(1, min(len(chunks), 12) + 1))
    if len(chunks) > 12:
        steps += f" → … C{len(chunks)}"
    return f"**Prompt order:** prefix → {steps} → question  \n" + "  \n".join(lines[:50]) + (
        f"  \n… and {len(lines) - 50} more" if len(lines) > 50 else "")


def request_summary(prefix: str | None, chunks: list[str] | None, question: str | None) -> str:
    """One line naming the Compose tab's request, shown where another tab uses it."""
    shown = md(prefix[:80]) if isinstance(prefix, str) and prefix else "(none)"
    return (f"**Request from the Compose tab:** prefix “{shown}” · "
            f"{len(chunks or [])} chunk(s) · question “{md((question or '')[:80])}”")


def example_request(lab: Lab, session: str) -> tuple[str, str, list[str], str, list[str]]:
    """The bundled example -> (preset name, prefix, chunk keys in order, question,
    algorithms): several documents behind a system prompt, where naive linking leaves a
    false attention sink at every document but the first."""
    p = lab.presets
    chunks = [key for name in p.example_documents for key in lab.examples[name]]
    return (p.example_prefix, p.prefixes[p.example_prefix], chunks, p.example_question,
            list(p.example_algorithms))


def reverse_order(chunks: list[str] | None) -> list[str]:
    """The same chunks, last first."""
    return list(reversed(chunks or []))


def rotate_order(chunks: list[str] | None) -> list[str]:
    """The same chunks with the first moved to the end."""
    chunks = list(chunks or [])
    return chunks[1:] + chunks[:1]
