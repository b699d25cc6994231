"""A comparison read at a glance: one sentence per algorithm, and one card per algorithm for
narrow screens, computed from the numbers the results table shows (Compose's report rows).

The sentence says what a visitor comes to learn, in this order: how much sooner the first
token came than under full recompute (the reference's TTFT: it always runs, shown or not),
whether the first token is the reference's, and the first-token KL beside naive linking's
(the error LegoLink and the others exist to remove). Only numbers of this run are used.
"""

from __future__ import annotations

from typing import Any

from app.render import html_text, md
from engine import NAIVE, REFERENCE

__all__ = ["cards_html", "verdict", "verdicts", "verdicts_markdown"]


def _speedup(ttft_ms: float, reference_ttft_ms: float) -> str:
    if ttft_ms <= 0 or reference_ttft_ms <= 0:
        return "TTFT not measured"
    ratio = reference_ttft_ms / ttft_ms
    if ratio >= 1:
        return f"{ratio:.1f}x faster than full recompute"
    return f"{1 / ratio:.1f}x slower than full recompute"


def verdict(row: dict[str, Any], reference_ttft_ms: float, naive_kl: float | None) -> str:
    """One algorithm's sentence (plain text), e.g. "legolink-16: 3.1x faster than full
    recompute, same first token, KL 0.021 (naive 0.294: 14x lower)."."""
    label = row["algorithm"]
    if label == REFERENCE:
        return (f"{label}: the reference, every position computed "
                f"(TTFT {row['ttft_ms']:,.0f} ms).")
    first = "same first token" if row["first_token_match"] else "first token differs"
    kl = row["first_token_kl"]
    text = f"{label}: {_speedup(row['ttft_ms'], reference_ttft_ms)}, {first}, KL {kl:.3f}"
    if row["algorithm"] == NAIVE or naive_kl is None:
        tail = " (no correction: the false sinks stay)" if row["algorithm"] == NAIVE else ""
        return f"{text}{tail}."
    if naive_kl <= 0:
        return f"{text} (naive's is 0 here: nothing to correct)."
    if kl <= 0:
        return f"{text} (naive {naive_kl:.3f}: all of it removed)."
    ratio = naive_kl / kl
    if ratio >= 1:
        return f"{text} (naive {naive_kl:.3f}: {ratio:.1f}x lower)."
    return f"{text} (naive {naive_kl:.3f}: {1 / ratio:.1f}x higher)."


def verdicts(rows: list[dict[str, Any]], reference_ttft_ms: float) -> list[str]:
    """Every shown row's sentence, in the table's order; naive's KL when naive ran."""
    naive = next((r["first_token_kl"] for r in rows if r["algorithm"] == NAIVE), None)
    return [verdict(row, reference_ttft_ms, naive) for row in rows]


def verdicts_markdown(rows: list[dict[str, Any]], reference_ttft_ms: float) -> str:
    """The verdicts as a Markdown list (labels escaped), or a hint before any run."""
    if not rows:
        return "*Run a comparison: one line per algorithm will say what it gained.*"
    return "\n".join(f"- {md(line)}" for line in verdicts(rows, reference_ttft_ms))


def cards_html(rows: list[dict[str, Any]], reference_ttft_ms: float) -> str:
    """One card per algorithm (answer, match, KL, TTFT, speed-up) for narrow screens, where
    the wide table would scroll sideways; every visitor string escaped."""
    cards = []
    for row in rows:
        if row["algorithm"] == REFERENCE:
            match = "reference"
        else:
            match = "✓ same first token" if row["first_token_match"] else "✗ first token differs"
        speed = ("reference" if row["algorithm"] == REFERENCE
                 else _speedup(row["ttft_ms"], reference_ttft_ms))
        cards.append(
            '<div class="result-card">'
            f'<div class="card-title">{html_text(row["algorithm"])}</div>'
            f'<div class="card-answer">{html_text(row["text"]) or "<i>(no answer)</i>"}</div>'
            '<dl>'
            f'<dt>match</dt><dd>{html_text(match)}</dd>'
            f'<dt>KL</dt><dd>{row["first_token_kl"]:.3f}</dd>'
            f'<dt>TTFT</dt><dd>{row["ttft_ms"]:,.0f} ms</dd>'
            f'<dt>speed</dt><dd>{html_text(speed)}</dd>'
            '</dl></div>')
    return f'<div class="result-cards">{"".join(cards)}</div>'
