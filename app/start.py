"""Start tab handlers: the guided story, one question over the same example documents under 2
prefixes x 2 orders, each request answered by prefix_cache and by LegoLink.

prefix_cache computes exactly what full recompute computes (it reuses only an identical token
prefix), so it is the reference the LegoLink answers are measured against. The story starts
from an empty prefix cache (the visitor's own entries: each visitor's are apart), so that its
first request is new to both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from app.budget import Estimate, check_chars, check_context
from app.cost import Prompt, Work, run_work
from app.errors import user_errors
from app.inspector import DEFAULT_ALGORITHMS as INSPECTED
from app.lab import Lab
from app.library import PROGRESS
from app.render import md
from engine import measure
from visualize.story import story_figure

ALGORITHMS = ("prefix_cache", "legolink")
NEW_TOKENS = 8
TABLE_HEADERS = ["request", "prefix", "order", "compiled", "hits", "reused: prefix_cache",
                 "reused: legolink", "TTFT prefix_cache", "TTFT legolink", "legolink = exact"]


def story_requests(lab: Lab) -> list[tuple[str, str, list[str]]]:
    """(name, prefix preset, chunk keys in order) of the story's 4 requests."""
    p = lab.presets
    keys = [key for name in p.story_documents for key in lab.examples[name]]
    orders = (("order 1", keys), ("order 2", keys[::-1]))
    return [(f"R{2 * i + j + 1}: prefix {i + 1}, {order}", prefix, chunks)
            for i, prefix in enumerate(p.story_prefixes)
            for j, (order, chunks) in enumerate(orders)]


def story_table(story: dict[str, Any] | None) -> pd.DataFrame:
    """One row per request of a story."""
    rows = []
    for r in (story or {}).get("requests", []):
        pc, lego = (r["runs"][label] for label in r["runs"])
        same = "✓ same answer" if r["answer_match"] else (
            "first token only" if r["first_token_match"] else "✗ differs")
        rows.append([r["name"].split(":")[0], r["prefix"], r["order"], r["compiled"], r["hits"],
                     pc["tokens_reused"], lego["tokens_reused"], round(pc["ttft_ms"]),
                     round(lego["ttft_ms"]), same])
    return pd.DataFrame(rows, columns=TABLE_HEADERS)


def story_summary(story: dict[str, Any] | None) -> str:
    """The story's point, with its own numbers."""
    requests = (story or {}).get("requests") or []
    if not requests:
        return "Press **Run the story** to ask one question under 2 prefixes × 2 orders."
    pc, lego = zip(*(list(r["runs"].values()) for r in requests), strict=True)
    speedup = sum(p["ttft_ms"] for p in pc) / max(sum(g["ttft_ms"] for g in lego), 1e-9)
    compiled = sum(r["compiled"] for r in requests)
    return (f"Across the 4 requests, prefix_cache reused **{sum(p['tokens_reused'] for p in pc)}"
            f"** prompt tokens and LegoLink **{sum(g['tokens_reused'] for g in lego)}**; the "
            f"documents were compiled **{compiled}** time(s) during the story (once at "
            f"start-up before it), and LegoLink answered **{speedup:.1f}×** sooner. "
            "LegoLink's answers are measured against prefix_cache's, which are exact."
            + story_verdict(requests))


def story_verdict(requests: list[dict[str, Any]]) -> str:
    """The story's verdict and its answers, request by request (answers escaped)."""
    same = sum(1 for r in requests if r["answer_match"])
    first = sum(1 for r in requests if r["first_token_match"])
    lines = [f"  \n**Verdict:** LegoLink gave prefix_cache's exact answer in **{same} of "
             f"{len(requests)}** requests, the same first token in **{first}**."]
    for r in requests:
        pc, lego = (r["runs"][label]["text"] for label in r["runs"])
        lines.append(f"- {md(r['name'].split(':')[0])}: prefix_cache “{md(pc.strip())}” · "
                     f"LegoLink “{md(lego.strip())}”")
    return "\n".join(lines)


def plan_story(lab: Lab, question: Any, ensure: bool = False,
               salt: str = "") -> tuple[list, Estimate]:
    """The story's requests for `question`, checked (with `ensure`, the examples recompiled
    where the store lost them; prefix_cache keeps and reuses them under `salt`, the
    visitor's) -> ((name, prefix preset, requests) per request, the estimate of running them
    all)."""
    check_chars(question, "question", lab.limits.prompt_chars)
    engine, presets, plan = lab.engine, lab.presets, story_requests(lab)
    checked = [(name, prefix, [engine.request(prefix=presets.prefixes[prefix], chunks=chunks,
                                              question=question, algorithm=algorithm,
                                              max_new_tokens=NEW_TOKENS, cache_salt=salt)
                               for algorithm in ALGORITHMS]) for name, prefix, chunks in plan]
    if ensure:
        lab.ensure_examples(plan[0][2])
    work, layers = Work(), engine.model.spec.num_layers
    limit = min(lab.limits.context_tokens, engine.context_limit)
    for _, _, requests in checked:
        layout = engine.plan(requests[0]).layout
        check_context(layout.num_tokens, NEW_TOKENS, limit)
        work += sum((run_work(Prompt.of(layout), r.algorithm, NEW_TOKENS, layers)
                     for r in requests), Work())
    runs = len(checked) * len(ALGORITHMS)
    return checked, lab.estimator.estimate("story", work, f"{runs} runs of the story",
                                           "ask a shorter question")


def estimate_story(lab: Lab, session: str, question: Any) -> Estimate:
    """What `run_story` with this question will cost (checked when it is queued)."""
    return plan_story(lab, question)[1]


def play(lab: Lab, question: str, progress: gr.Progress = PROGRESS, salt: str = "",
         bounded: bool = True) -> Iterator[dict[str, Any]]:
    """Run the story's requests -> the story so far (a JSON-ready dict) after each;
    prefix_cache keeps and reuses them under `salt` (the visitor's); with `bounded` (a
    visitor's call), refused over the app's bound of model time per call."""
    engine = lab.engine
    keys = story_requests(lab)[0][2]
    checked, estimate = plan_story(lab, question, ensure=True, salt=salt)
    if bounded:
        lab.admission.within_budget(estimate)
    engine.prefix_cache.clear(salt)  # the first request is new to prefix caching too
    story: dict[str, Any] = {"question": question, "device": engine.config.device,
                             "model": engine.model.model_id, "compiled_before": len(keys),
                             "requests": []}
    hits_so_far = 0
    with lab.estimator.timed(estimate):
        for index, (name, prefix, requests) in enumerate(checked):
            progress((index, len(checked)), desc=name)
            missing = sum(1 for key in keys if key not in engine.store)
            before = {c.key: c.hits for c in engine.store.stats().chunks}
            runs = [engine.run_request(request) for request in requests]
            after = {c.key: c.hits for c in engine.store.stats().chunks}
            hits_so_far += sum(after.get(k, 0) - before.get(k, 0) for k in keys)
            exact, lego = runs
            fidelity = measure(lego, exact)
            story["requests"].append({
                "name": name, "prefix": prefix, "order": name.rsplit(", ", 1)[1],
                "compiled": missing, "prompt_tokens": exact.num_prompt_tokens,
                "hits": hits_so_far, "first_token_match": fidelity.first_token_match,
                "answer_match": fidelity.answer_match,
                "runs": {r.algorithm: {"tokens_reused": r.counts.num_cached,
                                       "ttft_ms": round(r.ttft_ms, 1), "text": r.text}
                         for r in runs}})
            yield story


@user_errors
def run_story(lab: Lab, session: str, question: str,
              progress: gr.Progress = PROGRESS) -> Iterator[tuple[go.Figure, pd.DataFrame, str]]:
    """Ask `question` over the same example documents under 2 prefixes x 2 orders, with
    prefix_cache and LegoLink -> (figure, table, summary), after each request."""
    for story in play(lab, question, progress, lab.libraries.salt(session)):
        yield story_figure(story), story_table(story), story_summary(story)


def first_story(lab: Lab) -> dict[str, Any]:
    """The story with the presets' question: run at the app's first start, for its first page
    (a visitor's own question is shown to that visitor only)."""
    *_, story = play(lab, lab.presets.example_question, bounded=False)
    return story


def inspect_last(lab: Lab, session: str, question: str) -> tuple:
    """The story's last request put in the Compose tab, for the Inspect tab -> (prefix,
    chunks, question, algorithms to inspect, the Inspect tab selected)."""
    _, prefix, chunks = story_requests(lab)[-1]
    return (lab.presets.prefixes[prefix], chunks, question, list(INSPECTED),
            gr.Tabs(selected="inspect"))
