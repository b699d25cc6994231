"""An algorithm's parameters, declared on its class: name, keyword, kind, range, default, label
and help. Request checks, labels ("legolink-16"), the command line and the app's controls read
them here, and nowhere else.

Kinds: "whole" (an integer, k = 16 tokens), "percent" (a share in [low, high], written in percent
in a label: cacheblend-15 is 0.15) and "real" (any real in range; never written in a label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KINDS = ("whole", "percent", "real")


def whole_number(value: Any, name: str, low: int, high: int) -> int:
    """An integer setting; a whole float (16.0, as sliders and JSON send) counts as one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    if not (float(value).is_integer() and low <= value <= high):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def real_number(value: Any, name: str, low: float, high: float) -> float:
    """A real-valued setting in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Parameter:
    """One knob of one or more algorithms (LegoLink and QueryLink share k)."""

    name: str  # short, as the app's API names its input: "k"
    keyword: str  # as a request names it: Engine.run(..., recompute_k=16)
    kind: str  # one of KINDS
    low: float
    high: float
    default: float
    label: str  # a control's label: "k: tokens recomputed per chunk"
    help: str  # one sentence: what it changes

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: kind must be one of {KINDS}")
        if self.kind == "whole" and not all(float(v).is_integer()
                                            for v in (self.low, self.high, self.default)):
            raise ValueError(f"parameter {self.name}: a whole parameter has whole bounds")
        self.check(self.default)

    @property
    def labelled(self) -> bool:
        """Whether a label can carry a value (as a whole number: k, or a ratio in percent)."""
        return self.kind != "real"

    @property
    def step(self) -> float:
        """A control's step: 1 for whole numbers, 1/20 of a share, 1/100 of a real range."""
        return {"whole": 1, "percent": 0.05}.get(self.kind, (self.high - self.low) / 100)

    def check(self, value: Any) -> int | float:
        """The value, in range and of this parameter's type; a ValueError names both."""
        if self.kind == "whole":
            return whole_number(value, self.keyword, int(self.low), int(self.high))
        return real_number(value, self.keyword, self.low, self.high)

    def write(self, value: float) -> str:
        """The value as a label writes it: 16 -> "16", 0.15 (percent) -> "15"."""
        return str(round(100 * value)) if self.kind == "percent" else str(int(value))

    def read(self, text: str) -> int | float:
        """A label's number as a checked value: "15" (percent) -> 0.15."""
        return self.check(int(text) / 100 if self.kind == "percent" else int(text))

    def describe(self) -> str:
        """Its range and default, as a reader writes them: "0..1024, default 16"."""
        fmt = (lambda v: f"{v:g}") if self.kind != "whole" else (lambda v: str(int(v)))
        return f"{fmt(self.low)}..{fmt(self.high)}, default {fmt(self.default)}"


# The budgets every endpoint of the app has taken since its first release, k then ratio.
RECOMPUTE_K = Parameter(
    "k", "recompute_k", "whole", 0, 1024, 16, "k: tokens recomputed per chunk",
    "tokens recomputed at the head of each chunk that does not open the prompt: they remove "
    "its false attention sink")  # 1024: twice the chunking budget covers any whole chunk
RECOMPUTE_RATIO = Parameter(
    "ratio", "recompute_ratio", "percent", 0.0, 1.0, 0.15,
    "ratio: share of cached tokens recomputed",
    "share of the cached tokens recomputed, chosen per request by how far their values deviate")
