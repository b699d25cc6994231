"""Algorithm specs for the benchmarks: "legolink-16" is legolink with k = 16, "cacheblend-15"
is cacheblend with ratio 0.15; a plain name takes the engine's configured parameter.

Results are keyed by the resolved label (a plain "legolink" becomes "legolink-16" under the
default config), the same label the engine puts on its RunResult.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config import EngineConfig
from engine.link import ALGORITHMS

DEFAULT_ALGORITHMS = ("full_recompute", "naive", "cacheblend-15", "legolink-2", "legolink-16",
                      "prefix_cache")
REFERENCE = "full_recompute"  # every fidelity metric compares against its answers


@dataclass(frozen=True)
class AlgorithmSpec:
    """One algorithm with its parameter, as the engine's `run` takes it."""

    name: str
    recompute_k: int | None = None  # legolink only
    recompute_ratio: float | None = None  # cacheblend only

    @property
    def label(self) -> str:
        if self.name == "legolink":
            return f"legolink-{self.recompute_k}"
        if self.name == "cacheblend":
            return f"cacheblend-{round(100 * self.recompute_ratio)}"
        return self.name

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `Engine.run` / `Engine.stream` for this spec."""
        kwargs: dict[str, Any] = {"algorithm": self.name}
        if self.recompute_k is not None:
            kwargs["recompute_k"] = self.recompute_k
        if self.recompute_ratio is not None:
            kwargs["recompute_ratio"] = self.recompute_ratio
        return kwargs


def parse_algorithm(spec: str, config: EngineConfig) -> AlgorithmSpec:
    """"legolink-16" -> AlgorithmSpec("legolink", recompute_k=16); raises ValueError."""
    name, _, param = spec.strip().partition("-")
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {spec!r}: choose from {', '.join(ALGORITHMS)} "
                         "(legolink-K and cacheblend-PERCENT take a parameter)")
    if name not in ("legolink", "cacheblend"):
        if param:
            raise ValueError(f"{name} takes no parameter, got {spec!r}")
        return AlgorithmSpec(name)
    if param and not param.isdigit():
        raise ValueError(f"{spec!r}: the parameter after '-' must be a whole number")
    if name == "legolink":
        return AlgorithmSpec(name, recompute_k=int(param) if param else config.recompute_k)
    ratio = int(param) / 100 if param else config.recompute_ratio
    if not 0 <= ratio <= 1:
        raise ValueError(f"{spec!r}: cacheblend's percentage must be in 0..100")
    return AlgorithmSpec(name, recompute_ratio=ratio)


def parse_algorithms(specs: str | list[str] | tuple[str, ...],
                     config: EngineConfig) -> list[AlgorithmSpec]:
    """A comma-separated string or a list -> specs, full_recompute first (added if missing,
    since it is the reference of every fidelity metric); duplicate labels are refused."""
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    parsed = [parse_algorithm(s, config) for s in items if s.strip()]
    labels = [p.label for p in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"algorithms given twice: {', '.join(duplicates)}")
    reference = [p for p in parsed if p.name == REFERENCE] or [AlgorithmSpec(REFERENCE)]
    return reference + [p for p in parsed if p.name != REFERENCE]
