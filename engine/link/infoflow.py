"""InfoFlow KV (arXiv 2603.05353, ICML 2026) as a link algorithm: positions ranked by the norm
of the query's attention at the chunks' global positions, chunks reordered by where it flows."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch

from engine.link.base import LinkInput, LinkResult
from engine.link.compile import SINK_COMPILE
from engine.link.layout import Layout
from engine.link.parameter import RECOMPUTE_K
from engine.link.querylink import QueryLink, recompute_budget, sink_positions, top_positions
from engine.runtime import now_ms


class InfoFlow(QueryLink):
    """Recompute LegoLink-k's count of chunk positions, those with the largest attention norm
    from the question at the last two layers, after moving the chunks the question draws on
    most next to it.

    InfoFlow KV (arXiv 2603.05353; its code: tx467/InfoFlow-KV) compiles each chunk behind a
    short prefix whose K/V it drops, rotates the chunks to their global positions and scores
    every position, per scoring layer, by the softmax attention of the query rows averaged
    over heads, then the L2 norm over the rows, averaged over the last two layers
    (importance_scorer.py, method `norm`). With reordering it selects once, orders the chunks
    by their share of selected tokens, ascending (the densest goes last, next to the query),
    rebases RoPE to the new offsets, scores and selects again, and recomputes.

    Our own code; where the paper leaves a choice open we chose:
    - compile: LegoLink-0's variant (3 sacrificial BOS tokens, dropped; one copy serves both);
    - budget: LegoLink-k's count on the linked layout (the paper's is a ratio), so infoflow-16
      recomputes as many positions as legolink-16 and the frontier compares them at one cost;
    - query rows: the whole suffix (our layout does not split the question from the chat
      template's tail); no forced sinks (its compile leaves none);
    - ties keep the earlier position and the earlier chunk (stable sorts), so equal densities
      leave the prompt as composed; a prompt that opens with a chunk (no prefix) is never
      reordered: that chunk is linked from its plain compile, exact only at position 0;
    - the second scoring runs even when the order did not change (the paper's pipeline; its
      cost is counted).
    The result reports the layout as linked, in its order; fidelity is measured against full
    recompute of the prompt as composed (engine/fidelity.py). It differs from querylink in
    the layers scored (the last two of a full-depth probe, not all of the first sixth), the
    rows (all, not the last 4), the score (the L2 norm of the head mean, not renormalised), the
    forced sinks (none) and the reordering. Budget 0 is LegoLink-0; a budget covering every
    chunk is full recompute.
    """

    name = "infoflow"
    summary = ("LegoLink's count of k per chunk on sink-free chunks, the positions with the "
               "largest attention norm from the question at the last 2 layers, after moving the "
               "chunks the question draws on most next to it (reorders; variant fixed: keeps "
               "the order as composed)")
    paper = "InfoFlow KV (ICML 2026, arXiv 2603.05353; tx467/InfoFlow-KV)"
    color = "#0ca678"
    compile_variant = SINK_COMPILE
    num_sinks = 0
    num_queries = 1 << 30  # every suffix row
    probe_share = 1.0  # scoring the last layers needs every layer below them
    num_scored_layers: ClassVar[int] = 2
    num_scorings = 2  # before and after reordering (the fixed variant runs one: an upper bound)
    # `infoflow-fixed-16` scores and selects as InfoFlow does but keeps the prompt's order: it
    # tells the selection's fidelity from the reordering's (which changes the prompt itself).
    variants = ("fixed",)

    @property
    def reorder(self) -> bool:
        return self.spec.variant != "fixed"

    def scored_layers(self, depth: int) -> range:
        return range(max(0, depth - self.num_scored_layers), depth)

    def layer_importance(self, scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """scores: [num_heads, m, N] -> [N]: the softmax over every key a row sees, the mean
        over heads, then the L2 norm over the rows; non-candidates at 0."""
        norm = torch.softmax(scores.float(), dim=-1).mean(dim=0).norm(dim=0)
        return norm * keep

    def fused(self, importance: torch.Tensor, num_scored: int,
              keep: torch.Tensor) -> torch.Tensor:
        """The scored layers' mean."""
        return importance / num_scored

    def link(self, job: LinkInput) -> LinkResult:
        layout, model = job.layout, job.model
        k = int(self.value(RECOMPUTE_K))
        budget = recompute_budget(layout, k)
        candidates = sink_positions(layout, k, 0)[1]
        if (not self.reorder or layout.chunks[0].start == 0 or budget == 0
                or budget >= int(candidates.sum())):
            return super().link(job)  # one scoring, or none (LegoLink-0, full recompute)
        t0 = now_ms(model.device)
        kv, cached = self.gather(job)
        new = torch.nonzero(~cached).flatten()
        depth = model.spec.num_layers
        importance, _ = self.probe(model, layout, kv, new, candidates, depth)
        order = density_order(layout, top_positions(importance, candidates, budget))
        del kv  # the linked prompt's buffer is gathered again, in the chosen order
        t1 = now_ms(model.device)
        if order != sorted(order):
            job = replace(job, layout=reordered(layout, order),
                          chunks=[job.chunks[i] for i in order])
        result = super().link(job)
        result.timings_ms["reorder_ms"] = t1 - t0
        result.timings_ms["forward_ms"] += t1 - t0
        result.num_token_layers += len(new) * depth  # the first scoring
        return result


def density_order(layout: Layout, chosen: torch.Tensor) -> list[int]:
    """Chunk indices by their share of chosen positions, ascending, ties in the original
    order: the chunk densest in chosen positions goes last, next to the question."""
    share = [float(chosen[s.start:s.end].sum()) / len(s.token_ids) for s in layout.chunks]
    return sorted(range(len(share)), key=lambda i: (share[i], i))


def reordered(layout: Layout, order: list[int]) -> Layout:
    """The layout with its chunks in `order` (indices into layout.chunks), the other segments
    where they were, every start recomputed."""
    moved = iter([layout.chunks[i] for i in order])
    segments, start = [], 0
    for seg in layout.segments:
        seg = next(moved) if seg.kind == "chunk" else seg
        segments.append(replace(seg, start=start))
        start += len(seg.token_ids)
    return Layout(tuple(t for s in segments for t in s.token_ids), tuple(segments))

