"""What a benchmark's numbers cannot say, written once for the figure and the page: timings
from too few repeats, and a task score of 0 for the reference itself."""

from __future__ import annotations

import textwrap
from typing import Any

__all__ = ["MIN_REPEATS", "noise_note", "wrap", "zero_score_note"]

MIN_REPEATS = 3  # fewer repeats per point: the order of close timings is noise
NOTE_CHARS = 52  # a note's line fits a phone's 340 px figure at 11 px


def noise_note(repeats: int | None, what: str = "repeat") -> str:
    """A warning for timings that are medians of fewer than MIN_REPEATS runs ("" otherwise, or
    when unknown); `what` names a run ("repeat", "example")."""
    if repeats is None or repeats >= MIN_REPEATS:
        return ""
    return (f"{repeats} {what}(s) per point: timings this close are noise; rerun with "
            f"{MIN_REPEATS} or more {what}s before reading an order into them.")


def zero_score_note(rows: dict[str, dict[str, Any]]) -> str:
    """Why a score column of zeros is no verdict: "" unless full recompute, the reference,
    scored 0 (or is absent from `rows`, algorithm label -> its row with a "score")."""
    reference = rows.get("full_recompute")
    if reference is None or reference.get("score", 1) > 0:
        return ""
    return ("Task score 0 for full recompute too: this model cannot answer these questions, "
            "so the score tells the algorithms apart nowhere; read first-token KL and "
            "agreement with full recompute instead.")


def wrap(note: str, width: int = NOTE_CHARS) -> list[str]:
    """A note cut into lines of at most `width` characters (Plotly does not wrap text)."""
    return textwrap.wrap(note, width) if note else []
