"""Readable ticks on a log axis: 1-2-5 steps written in full ("200", "1,000", "2,000"), never
Plotly's bare minor digits ("3, 2, 1000, 9, 8") when the range spans less than a decade."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["log_axis", "log_ticks", "tick_text"]

STEPS = (1, 2, 5)


def tick_text(value: float) -> str:
    """A tick's label: thousands separated, no trailing zeros."""
    return f"{value:,.0f}" if value >= 1 else f"{value:.3g}"


def log_ticks(values: Iterable[float]) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log axis over `values` (positive ones): the 1-2-5 steps
    from the one at or below the smallest to the one at or above the largest; ([], []) when
    there is no positive value."""
    positive = [v for v in values if v > 0 and math.isfinite(v)]
    if not positive:
        return [], []
    lo, hi = min(positive), max(positive)
    ticks = [step * 10.0 ** exponent
             for exponent in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for step in STEPS]
    below = max((t for t in ticks if t <= lo), default=ticks[0])
    above = min((t for t in ticks if t >= hi), default=ticks[-1])
    chosen = [t for t in ticks if below <= t <= above]
    return chosen, [tick_text(t) for t in chosen]


def log_axis(values: Iterable[float]) -> dict:
    """Keyword arguments for `update_xaxes`/`update_yaxes`: a log axis whose range runs from
    the first tick to the last (so every tick shows), with `log_ticks`' values and labels."""
    tickvals, ticktext = log_ticks(values)
    if not tickvals:
        return {"type": "log"}
    pad = 0.03
    return {"type": "log", "tickvals": tickvals, "ticktext": ticktext,
            "range": [math.log10(tickvals[0]) - pad, math.log10(tickvals[-1]) + pad]}
