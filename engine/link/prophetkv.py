"""ProphetKV (ICML 2026, arXiv 2602.02579) as a link algorithm: tokens ranked by the whole
query's attention over the reused cache, fused across every layer."""

from __future__ import annotations

import torch

from engine.link.layout import Layout
from engine.link.querylink import QueryLink
from engine.runtime import Batch, Model


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

    def probe(self, model: Model, layout: Layout, kv, new: torch.Tensor,
              candidates: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layers 0..depth-1 for the new positions -> (importance [N] fp32 on the host: the
        per-layer max over suffix rows and heads of their attention, averaged over layers;
        the new positions' hidden states after the probe)."""
        n, device = layout.num_tokens, model.device
        m = n - layout.segments[-1].start  # the suffix rows, a causal run at the end
        rest = Batch.of(new[:-m], n - m, device) if len(new) > m else None
        last = Batch.run(n - m, m, device, capture_scores=True)
        importance = torch.zeros(n, dtype=torch.float32, device=device)
        h = model.embed(torch.tensor(layout.token_ids)[new])
        for layer in range(depth):
            one = range(layer, layer + 1)
            h_rest = model.forward(h[:-m], rest, kv, one).h if rest is not None else h[:0]
            out = model.forward(h[-m:], last, kv, one)
            h = torch.cat([h_rest, out.h])
            # scores: [1, num_heads, m, N]: softmax over every key a row sees, then the max
            importance += torch.softmax(out.scores[0], dim=-1).amax(dim=(0, 1))
        return (importance / depth).masked_fill(~candidates.to(device), 0.0).cpu(), h
