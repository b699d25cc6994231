"""QueryLink: LegoLink's budget, spent on the positions the question attends to.

LegoLink recomputes the first k tokens of every chunk not at position 0: it removes the false
attention sinks, but it spends the rest of the budget by position. CacheBlend chooses by value
drift after an early layer, which costs layers 0-1 for every token. QueryLink asks the question
instead (after ProphetKV, A³ and QCFuse, which rank by the query's attention; our own code):

1. Gather the chunks' K/V as every algorithm does (the naive cache, false sinks included).
2. Probe: run the new tokens (prefix and question) through the first layers (`probe_share`)
   over that cache, capturing the attention of the question's last `num_queries` tokens.
   The prefix is computed here once, exactly: it precedes every chunk, so nothing later
   changes it. Its hidden states carry on into the final pass.
3. Choose: always the first `num_sinks` tokens of each chunk not at 0 (the false sinks; the
   question's attention on them is an artefact of compiling alone), then the remaining budget
   on the chunk positions with the most attention. Each query row's attention is renormalised
   over those candidate positions, so the sinks, the prefix and the question itself do not
   dilute it; rows and heads are averaged, layers summed.
4. Final pass: the chosen positions and the question through every layer, exactly as any
   link algorithm computes its recompute set (the prefix joins after the probe's layers).

The budget is LegoLink's: sum over chunks not at position 0 of min(k, chunk length), so
querylink-16 recomputes as many positions as legolink-16. Extra work over LegoLink: the
question's tokens through the probe's layers, plus a 1-row call per probe layer (the scored
rows). Budget 0 is naive; a budget that covers every chunk is full recompute (no probe).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from engine.link.base import LinkAlgorithm, LinkInput, LinkResult, final_pass, kind_mask
from engine.link.layout import Layout
from engine.link.parameter import RECOMPUTE_K
from engine.runtime import Batch, Model, now_ms


class QueryLink(LinkAlgorithm):
    """Recompute k positions per chunk not at position 0 (LegoLink's count): each chunk's
    first `num_sinks`, then those the question attends to most in a probe over the naive
    cache."""

    name = "querylink"
    summary = ("LegoLink's budget of k per chunk, spent where the question attends: each "
               "chunk's first 2 tokens, then the positions the question's attention ranks "
               "highest in a probe over the naively linked cache")
    paper = ("ours, in the family of A³ (arXiv 2511.17560), ProphetKV (arXiv 2602.02579) and "
             "QCFuse (arXiv 2604.08585)")
    color = "#f59f00"
    parameters = (RECOMPUTE_K,)
    num_sinks: ClassVar[int] = 2  # first tokens of each chunk always recomputed
    num_queries: ClassVar[int] = 4  # last question tokens whose attention ranks positions
    # Share of the layers the probe runs. Measured on hotpotqa (10 examples, 6 chunks, SmolLM2):
    # 2/3 -> first-token KL 0.036 at 1.58x legolink-16's TTFT, 1/3 -> 0.056 at 1.33x,
    # 1/6 -> 0.062 at 1.22x (cacheblend-15: 0.080, legolink-16: 0.113).
    probe_share: ClassVar[float] = 1 / 6
    num_scorings: ClassVar[int] = 1  # probes run before the final pass (app/cost.py counts them)

    def link(self, job: LinkInput) -> LinkResult:
        model, layout = job.model, job.layout
        num_layers = model.spec.num_layers
        t0 = now_ms(model.device)
        kv, cached = self.gather(job)
        t1 = now_ms(model.device)
        k = int(self.value(RECOMPUTE_K))
        forced, candidates = sink_positions(layout, k, self.num_sinks)
        budget = recompute_budget(layout, k)
        num_free = budget - int(forced.sum())
        if num_free <= 0 or num_free >= int(candidates.sum()):  # nothing to choose: one pass
            recompute = forced | candidates if num_free > 0 else forced
            positions = torch.nonzero(recompute | ~cached).flatten()
            logits = final_pass(model, layout, kv, positions, range(num_layers))
            t2 = now_ms(model.device)
            return LinkResult(self.label, layout, kv, logits, kind_mask(cached, recompute),
                              len(positions), len(positions) * num_layers,
                              {"gather_ms": t1 - t0, "select_ms": 0.0, "forward_ms": t2 - t1})
        depth = max(1, min(num_layers, round(self.probe_share * num_layers)))
        new = torch.nonzero(~cached).flatten()
        importance, h_new = self.probe(model, layout, kv, new, candidates, depth)
        recompute = forced | top_positions(importance, candidates, num_free)
        t2 = now_ms(model.device)
        logits, work = self.finish(model, layout, kv, new, recompute, h_new, depth)
        t3 = now_ms(model.device)
        return LinkResult(self.label, layout, kv, logits, kind_mask(cached, recompute),
                          int((recompute | ~cached).sum()), len(new) * depth + work,
                          {"gather_ms": t1 - t0, "select_ms": t2 - t1, "forward_ms": t3 - t1})

    def probe(self, model: Model, layout: Layout, kv, new: torch.Tensor,
              candidates: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layers 0..depth-1 for the new positions over the gathered cache -> (importance [N]
        fp32 on the host, hidden states of the new positions after the probe [len(new), H]).

        Per layer, two calls: every new position but the last m without scores, then the
        last m (a causal run at the end) with scores, so only m query rows are scored.
        """
        n, device = layout.num_tokens, model.device
        m = min(self.num_queries, n - layout.segments[-1].start)
        rest = Batch.of(new[:-m], n - m, device) if len(new) > m else None
        scored = self.scored_layers(depth)
        last = {True: Batch.run(n - m, m, device, capture_scores=True),
                False: Batch.run(n - m, m, device)}
        keep = candidates.to(device)
        importance = torch.zeros(n, dtype=torch.float32, device=device)
        h = model.embed(torch.tensor(layout.token_ids)[new])
        for layer in range(depth):
            one = range(layer, layer + 1)
            h_rest = model.forward(h[:-m], rest, kv, one).h if rest is not None else h[:0]
            out = model.forward(h[-m:], last[layer in scored], kv, one)
            h = torch.cat([h_rest, out.h])
            if layer in scored:
                importance += self.layer_importance(out.scores[0], keep)
        return self.fused(importance, len(scored), keep).cpu(), h

    def scored_layers(self, depth: int) -> range:
        """The probed layers whose attention scores positions (here: all `depth`)."""
        return range(depth)

    def layer_importance(self, scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """One probed layer's score of every position, scores: [num_heads, m, N] -> [N]:
        the attention restricted to the candidates (`keep`), renormalised, mean over rows
        and heads."""
        weights = torch.softmax(scores, dim=-1) * keep
        weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-30)
        return weights.mean(dim=(0, 1))

    def fused(self, importance: torch.Tensor, num_scored: int,
              keep: torch.Tensor) -> torch.Tensor:
        """The scored layers' summed scores -> the ranking's importance [N] (the sum, here)."""
        return importance

    def finish(self, model: Model, layout: Layout, kv, new: torch.Tensor,
               recompute: torch.Tensor, h_new: torch.Tensor,
               depth: int) -> tuple[torch.Tensor, int]:
        """The final pass after a probe of `depth` layers -> (logits, token-layers computed).

        Layers 0..depth-1 for the chosen positions and the suffix, then the rest of the layers
        for every computed position, the prefix resuming from the probe's hidden states.
        """
        n, num_layers = layout.num_tokens, model.spec.num_layers
        ids = torch.tensor(layout.token_ids)
        suffix_start = layout.segments[-1].start
        num_prefix = int((new < suffix_start).sum())
        first = torch.nonzero(recompute | (torch.arange(n) >= suffix_start)).flatten()
        h = model.embed(ids[first])
        if depth == num_layers:  # the probe ran every layer: the prefix is done
            logits = final_pass(model, layout, kv, first, range(num_layers), h=h)
            return logits, len(first) * num_layers
        h = model.forward(h, Batch.of(first, n, model.device), kv, range(depth)).h
        positions = torch.cat([new[:num_prefix], first])
        h = torch.cat([h_new[:num_prefix], h])
        logits = final_pass(model, layout, kv, positions, range(depth, num_layers), h=h)
        return logits, len(first) * depth + len(positions) * (num_layers - depth)


def recompute_budget(layout: Layout, k: int) -> int:
    """LegoLink's count: min(k, length) for every chunk not at global position 0."""
    return sum(min(k, len(s.token_ids)) for s in layout.chunks if s.start != 0)


def sink_positions(layout: Layout, k: int, num_sinks: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ([N] bool forced: the first min(num_sinks, k) tokens of each chunk not at 0,
    [N] bool candidates: the rest of those chunks). A chunk at position 0 is exact as cached."""
    forced = torch.zeros(layout.num_tokens, dtype=torch.bool)
    candidates = torch.zeros(layout.num_tokens, dtype=torch.bool)
    for s in layout.chunks:
        if s.start != 0:
            head = s.start + min(num_sinks, k, len(s.token_ids))
            forced[s.start:head] = True
            candidates[head:s.end] = True
    return forced, candidates


def top_positions(importance: torch.Tensor, candidates: torch.Tensor, count: int) -> torch.Tensor:
    """[N] bool: the `count` candidates of highest importance (ties: the earlier position)."""
    score = importance.masked_fill(~candidates, float("-inf"))
    order = torch.sort(score, descending=True, stable=True).indices[:count]
    chosen = torch.zeros_like(candidates)
    chosen[order] = True
    return chosen & candidates
