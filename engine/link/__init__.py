"""Link: compiled chunks into one prompt's KV. The algorithm contract (`LinkAlgorithm`), one
file per algorithm, the registry they are listed in, and compile (how a chunk's KV is made).
Imports the runtime only."""

from engine.link.base import (
    RECOMPUTE_K,
    RECOMPUTE_RATIO,
    Kind,
    LinkAlgorithm,
    LinkInput,
    LinkResult,
    Naive,
    Parameter,
    final_pass,
)
from engine.link.compile import compile_chunk
from engine.link.layout import Layout, Segment
from engine.link.prefix_cache import PrefixCache
from engine.link.registry import ALGORITHMS, REFERENCE, REGISTRY, make_algorithm

__all__ = [
    "ALGORITHMS",
    "RECOMPUTE_K",
    "RECOMPUTE_RATIO",
    "REFERENCE",
    "REGISTRY",
    "Kind",
    "Layout",
    "LinkAlgorithm",
    "LinkInput",
    "LinkResult",
    "Naive",
    "Parameter",
    "PrefixCache",
    "Segment",
    "compile_chunk",
    "final_pass",
    "make_algorithm",
]
