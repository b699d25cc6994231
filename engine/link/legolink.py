"""LegoLink (EPIC, ICML 2025): recompute the head of every chunk that does not open the prompt."""

from __future__ import annotations

import torch

from engine.link.base import LinkAlgorithm
from engine.link.layout import Layout
from engine.link.parameter import RECOMPUTE_K


class LegoLink(LinkAlgorithm):
    """EPIC: recompute the first k tokens of every chunk not at global position 0, with full
    attention to everything before them; their false sinks disappear at O(k·N) cost."""

    name = "legolink"
    summary = "the first k tokens of every chunk not at position 0"
    paper = "EPIC (Hu et al., ICML 2025, arXiv 2410.15332)"
    color = "#2f9e44"
    parameters = (RECOMPUTE_K,)

    def select(self, layout: Layout) -> torch.Tensor:
        chosen = super().select(layout)
        k = int(self.value(RECOMPUTE_K))
        for seg in layout.chunks:
            if seg.start != 0:
                chosen[seg.start:seg.start + min(k, len(seg.token_ids))] = True
        return chosen
