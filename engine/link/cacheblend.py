"""CacheBlend (EuroSys 2025) as a link algorithm: choose the tokens to recompute by how far
their cached values drift from fresh ones at an early layer."""

from __future__ import annotations

import torch

from engine.link.base import LinkAlgorithm, LinkInput, LinkResult, final_pass, kind_mask
from engine.link.parameter import RECOMPUTE_RATIO
from engine.runtime import Batch, now_ms


class CacheBlend(LinkAlgorithm):
    """Layers 0..check for every token; at the check layer keep the top `ratio` of cached
    tokens by value deviation (sum of squares of fresh V minus cached V, over heads and head
    dim, as CacheBlend's code does), recompute only those (and the new tokens) above it."""

    name = "cacheblend"
    summary = ("layers 0–1 for all tokens, then the top *ratio* of cached tokens by value "
               "deviation")
    paper = "CacheBlend (Yao et al., EuroSys 2025, arXiv 2405.16444)"
    color = "#1c7ed6"
    parameters = (RECOMPUTE_RATIO,)
    check_layer = 1

    def link(self, job: LinkInput) -> LinkResult:
        model, layout = job.model, job.layout
        t0 = now_ms(model.device)
        kv, cached = self.gather(job)
        t1 = now_ms(model.device)
        n, num_layers = layout.num_tokens, model.spec.num_layers
        check = min(self.check_layer, num_layers - 1)
        cached_idx = torch.nonzero(cached).flatten().to(model.device)
        v_cached = kv.v[check][:, cached_idx].clone()
        h = model.embed(torch.tensor(layout.token_ids, device=model.device))
        h = model.forward(h, Batch.run(0, n, model.device), kv, layers=range(check + 1)).h
        deviation = (kv.v[check][:, cached_idx].float() - v_cached.float()).pow(2).sum(dim=(0, 2))
        num_top = int(len(cached_idx) * float(self.value(RECOMPUTE_RATIO)))
        top = cached_idx[torch.topk(deviation, num_top).indices].cpu()
        recompute = torch.zeros(n, dtype=torch.bool)
        recompute[top] = True
        positions = torch.nonzero(recompute | ~cached).flatten()
        logits = final_pass(model, layout, kv, positions, range(check + 1, num_layers),
                            h=h[positions.to(model.device)])
        t2 = now_ms(model.device)
        work = n * (check + 1) + len(positions) * (num_layers - check - 1)
        return LinkResult(self.label, layout, kv, logits, kind_mask(cached, recompute),
                          len(positions), work, {"gather_ms": t1 - t0, "forward_ms": t2 - t1})
