"""Link: compiled chunks into one prompt's KV.

The contract (`LinkAlgorithm` in base.py: declare yourself in class attributes, choose a
recompute set, report exactly the set you computed), one file per algorithm, the registry
they are listed in, their parameters and labels (`AlgorithmSpec`), and compile (how a chunk's
KV is made). Imports the runtime only.
"""

from engine.link.base import (
    CachedChunk,
    Counts,
    FloorTiming,
    Kind,
    LinkAlgorithm,
    LinkContext,
    LinkInput,
    LinkResult,
    final_pass,
    floor_pass,
    gather,
    kind_mask,
)
from engine.link.compile import DEFAULT_COMPILE, CompileVariant, compile_chunk
from engine.link.layout import Layout, Segment
from engine.link.parameter import (
    RECOMPUTE_K,
    RECOMPUTE_RATIO,
    Parameter,
    real_number,
    whole_number,
)
from engine.link.prompt_cache import PrefixCache, PrefixCacheStats
from engine.link.registry import (
    DEFAULT_ALGORITHMS,
    NAIVE,
    REFERENCE,
    algorithm,
    algorithm_choices,
    algorithm_names,
    parameter,
    parameters,
    register,
    users,
)
from engine.link.spec import AlgorithmSpec, label_forms, parse_algorithms, split_label

__all__ = ["DEFAULT_ALGORITHMS", "DEFAULT_COMPILE", "NAIVE", "RECOMPUTE_K", "RECOMPUTE_RATIO",
           "REFERENCE", "AlgorithmSpec", "CachedChunk", "CompileVariant", "Counts", "FloorTiming",
           "Kind", "Layout", "LinkAlgorithm", "LinkContext", "LinkInput", "LinkResult",
           "Parameter", "PrefixCache", "PrefixCacheStats", "Segment", "algorithm",
           "algorithm_choices", "algorithm_names", "compile_chunk", "final_pass", "floor_pass",
           "gather", "kind_mask", "label_forms", "parameter", "parameters", "parse_algorithms",
           "real_number", "register", "split_label", "users", "whole_number"]
