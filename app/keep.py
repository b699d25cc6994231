"""A comparison to keep: one self-contained HTML page (the request, the verdicts, the results
table, the phone's cards, the answers token by token and the two figures), with one copy of
Plotly's script inline, so the page opens offline and fetches nothing.

The page is drawn from the comparison the server kept for the page that ran it (`Kept`, held
in a `gr.State`: what the server computed, never what a client sends back), without a model
call: a redraw. Every visitor string (prefix, question, titles, answers) is escaped with
`html_text` as on the page; the figures' JSON is parsed and written again with `<`, `>` and `&`
as JSON escapes, so a title holding "</script>" cannot close the script it sits in.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr
from plotly.offline import get_plotlyjs

from app.errors import user_errors
from app.lab import Lab
from app.render import html_text
from app.verdict import cards_html

__all__ = ["NOTHING_KEPT", "Kept", "comparison_page", "download_comparison", "keeping",
           "safe_json"]

NOTHING_KEPT = "nothing to download yet: run a comparison first (its results are what is kept)"
COLUMNS = (("algorithm", "algorithm"), ("text", "answer"), ("first_token_match", "first token"),
           ("answer_match", "whole answer"), ("same_tokens", "same tokens"),
           ("first_token_kl", "first-token KL"), ("ttft_ms", "TTFT (ms)"),
           ("tokens_computed", "computed"), ("tokens_reused", "reused"))
STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:auto;padding:12px}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:4px 6px;
vertical-align:top}.verdicts li{margin:2px 0}.result-cards{display:none}
.result-card{border:1px solid #ccc;border-radius:8px;padding:6px 10px;margin:6px 0}
.card-title{font-weight:600}.card-answer{overflow-wrap:anywhere}
.result-card dl{display:grid;grid-template-columns:auto 1fr;gap:0 10px;margin:0}
.result-card dd{margin:0}.diff-row{display:flex;gap:8px;margin:2px 0}
.diff-label{flex:0 0 9rem;font-weight:600}.diff-tokens{white-space:pre-wrap;
overflow-wrap:anywhere}.tok.diff{background:#ffe3e3;color:#c92a2a;border-radius:3px}
.figure{width:100%;min-height:320px}
@media (max-width:640px){.result-cards{display:block}table.results{display:none}
.diff-row{flex-direction:column;gap:0}}"""


@dataclass(frozen=True)
class Kept:
    """One comparison as the server computed it: the report (/run_compare's), the answers
    token by token (HTML, escaped where it was made), the figures' Plotly JSON (TTFT, mask)
    and when it ran."""

    report: dict[str, Any]
    answers_html: str
    figures: tuple[str, ...]
    when: str

    @classmethod
    def of(cls, outputs: tuple) -> Kept:
        """From run_compare's last outputs (table, answers, TTFT, mask, reuse, verdicts,
        cards, report)."""
        _, answers, ttft, mask, *_, report = outputs
        return cls(report, answers or "", tuple(f.to_json() for f in (ttft, mask)),
                   datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def keeping(fn: Callable[..., Iterator[tuple]]) -> Callable[..., Iterator[tuple]]:
    """A compare handler whose outputs gain one: the comparison to keep (`Kept`), set by
    its last yield (the one carrying the report), skipped before. Same name, signature and
    docs as `fn`, so its endpoint does not change (a State output is no API output)."""
    def handler(*args: Any, **kwargs: Any) -> Iterator[tuple]:
        for outputs in fn(*args, **kwargs):
            done = isinstance(outputs[-1], dict) and "results" in outputs[-1]  # not a skip
            yield (*outputs, Kept.of(outputs) if done else gr.skip())
    handler.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    handler.__name__ = handler.__qualname__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def safe_json(plotly_json: str) -> str:
    """A figure's JSON as a script may hold it: parsed (nothing but JSON goes in) and written
    again with <, > and & escaped, and the two line separators JavaScript once refused."""
    figure = json.loads(plotly_json)
    data = json.dumps({"data": figure.get("data", []), "layout": figure.get("layout", {})})
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        data = data.replace(char, escaped)
    return data


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "✓ same" if value else "✗ differs"
    return html_text(value)


def _table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{html_text(label)}</th>" for _, label in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(key, ''))}</td>" for key, _ in COLUMNS)
                   + "</tr>" for row in rows)
    return f"<table class='results'><tr>{head}</tr>{body}</table>"


def _figure(number: int, plotly_json: str) -> str:
    return (f"<div class='figure' id='figure-{number}'></div><script>(function(){{"
            f"var f={safe_json(plotly_json)};Plotly.newPlot('figure-{number}',f.data,f.layout,"
            "{responsive:true,displaylogo:false});})();</script>")


def comparison_page(kept: Kept, model: str) -> str:
    """The whole page of a kept comparison."""
    report = kept.report
    rows = report["results"]
    chunks = "".join(f"<li>{html_text(c.get('title', ''))}</li>"
                     for c in report.get("chunks", []))
    verdicts = "".join(f"<li>{html_text(line)}</li>" for line in report.get("verdicts", []))
    return "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>EPIC Lab comparison</title><style>{STYLE}</style>",
        f"<script>{get_plotlyjs()}</script></head><body>",  # the one copy of Plotly
        "<h1>EPIC Lab comparison</h1>",
        f"<p>{html_text(model)} · {html_text(kept.when)} · "
        f"{html_text(report.get('prompt_tokens', '?'))} prompt tokens</p>",
        f"<p><b>Prefix:</b> {html_text(report.get('prefix', ''))}</p>",
        f"<p><b>Chunks, in prompt order:</b></p><ol>{chunks}</ol>",
        f"<p><b>Question:</b> {html_text(report.get('question', ''))}</p>",
        f"<h2>Verdict</h2><ul class='verdicts'>{verdicts}</ul>",
        "<h2>Results</h2>", _table(rows),
        cards_html(rows, float(report.get("reference_ttft_ms") or 0.0)),
        "<h2>Answers</h2>", kept.answers_html,
        "<h2>Figures</h2>", *(_figure(i, f) for i, f in enumerate(kept.figures)),
        "</body></html>"])


@user_errors
def download_comparison(lab: Lab, session: str, kept: Kept | None) -> str:
    """The comparison this page ran last, kept by the server, as one HTML file -> its path.
    A redraw: no model call. Before any comparison (or after one failed) it says so."""
    if not isinstance(kept, Kept) or not kept.report.get("results"):
        raise ValueError(NOTHING_KEPT)
    page = comparison_page(kept, lab.engine.model.model_id)
    # One file per visitor, rewritten by each download; the same comparison writes the same
    # bytes (its time is the run's), so Gradio's cache (by content) keeps one copy of it.
    folder = Path(tempfile.gettempdir()) / "epic-keep" / hashlib.sha256(
        session.encode()).hexdigest()[:24]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "epic-lab-comparison.html"
    path.write_text(page, encoding="utf-8")
    return str(path)
