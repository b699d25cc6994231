"""ProphetKV (ICML 2026, arXiv 2602.02579) as a link algorithm: tokens ranked by the whole
query's attention over the reused cache, fused across every layer."""

from __future__ import annotations

import torch

from engine.link.querylink import QueryLink


class ProphetKV(QueryLink):
    """Recompute LegoLink-k's count of chunk positions, those the query ranks highest.

    ProphetKV (arXiv 2602.02579) ranks tokens by their relevance to the user query to avoid
    the "crowding-out" of query-relevant tokens by globally salient ones, and fuses layer-wise
    attention metrics in a two-stage pipeline. Only its abstract was reachable; we follow the
    one concrete reading we found, QCFuse's reimplementation of it (leideng/QCFuse:
    `set_prophetkv_layers`, signal layers = all; `compute_att_full_softmax_importance`):
    stage 1 runs the new rows (prefix and question) through *every* layer over the reused
    (naively linked) cache; each layer's score of a chunk position is the full-denominator
    softmax attention of the question's rows, the max over rows and heads; stage 2 fuses the
    layers by their mean and recomputes the top B_k (with the question) through every layer.
    Choices: the budget is LegoLink-k's (`recompute_budget`, the matched count of this lab's
    frontier) instead of the paper's ratio; no sink is forced (a naive cache's false sinks
    draw much attention and usually rank first anyway, emergent, not a rule); the scored rows
    are the whole suffix (question and template tail: our layout does not split them).
    It differs from querylink in depth (all layers, not the first sixth), rows (all, not the
    last 4), aggregation (max, no renormalisation; mean over layers) and forced sinks (none).
    """

    name = "prophetkv"
    summary = ("LegoLink's count of k per chunk, the positions the whole question attends to "
               "most (max over rows and heads) in a probe through every layer, layers averaged")
    paper = ("ProphetKV (ICML 2026, arXiv 2602.02579), as QCFuse's code reimplements it "
             "(leideng/QCFuse)")
    color = "#ae3ec9"
    num_sinks = 0
    num_queries = 1 << 30  # every suffix row
    probe_share = 1.0

    def layer_importance(self, scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """scores: [num_heads, m, N] -> [N]: softmax over every key a row sees (the full
        denominator), then the max over rows and heads."""
        return torch.softmax(scores, dim=-1).amax(dim=(0, 1))

    def fused(self, importance: torch.Tensor, num_scored: int,
              keep: torch.Tensor) -> torch.Tensor:
        """The layers' mean, non-candidates at 0."""
        return (importance / num_scored).masked_fill(~keep, 0.0)
