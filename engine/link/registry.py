"""The registry of link algorithms, built from their classes: adding one is writing its class
(a `LinkAlgorithm` subclass) and listing it here, in the order the app shows them."""

from __future__ import annotations

from engine.link.base import FullRecompute, LegoLink, LinkAlgorithm, Naive
from engine.link.cacheblend import CacheBlend
from engine.link.prefix_cache import PrefixCache, PrefixCaching
from engine.link.querylink import QueryLink

REGISTRY: dict[str, type[LinkAlgorithm]] = {
    cls.name: cls for cls in (FullRecompute, PrefixCaching, Naive, CacheBlend, LegoLink,
                             QueryLink)}
ALGORITHMS = tuple(REGISTRY)  # the names, in display order
REFERENCE = FullRecompute.name  # what every fidelity measure compares against


def make_algorithm(name: str, label: str, value: float | int | None,
                   prefix_cache: PrefixCache) -> LinkAlgorithm:
    """An algorithm instance by registered name (its label and value already checked)."""
    cls = REGISTRY[name]
    if cls is PrefixCaching:
        return PrefixCaching(label, cache=prefix_cache)
    return cls(label, value)
