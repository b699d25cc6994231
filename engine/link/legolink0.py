"""LegoLink-0: EPIC's zero-linking-overhead variant, all of whose work happens at compile."""

from __future__ import annotations

from engine.link.base import LinkAlgorithm
from engine.link.compile import SINK_COMPILE


class LegoLink0(LinkAlgorithm):
    """LegoLink with nothing recomputed (EPIC's `kvlink-0`, Hu et al., ICML 2025, arXiv
    2410.15332; code: DerekHJH/epic, benchmarks_ours/evals/zero-linking-overhead/main.py).

    Each chunk is compiled behind 3 sacrificial sink tokens whose K/V are dropped (the compile
    variant `sink3`, compile.SinkCompile), so no chunk carries a false attention sink and
    linking recomputes no chunk position: the prefix and the question alone are computed,
    naive's cost. Where the paper's code does not fit this engine we chose: EPIC keeps a cached
    system prompt at position 0 as the prompt's real sink, ours is the (always computed)
    prefix; a chunk that opens the prompt (an empty prefix, a raw model) is linked from its
    plain compile, exact there, so the prompt keeps its one real sink.
    """

    name = "legolink0"
    summary = ("nothing: each chunk was compiled behind 3 sink tokens whose K/V are dropped, so "
               "it carries no false sink (EPIC's zero-overhead variant)")
    paper = ("EPIC (Hu et al., ICML 2025, arXiv 2410.15332): `kvlink-0`, its code's "
             "zero-linking-overhead variant")
    color = "#94d82d"
    compile_variant = SINK_COMPILE
