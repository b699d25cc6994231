"""CacheBlend (EuroSys 2025) as a link algorithm: choose the tokens to recompute by how far
their cached K/V drift from fresh ones at an early layer; by value (CacheBlend's code) or, as
the variant `key`, by key (LMCache's blender today)."""

from __future__ import annotations

import torch

from engine.link.base import LinkAlgorithm, LinkInput, LinkResult, final_pass, kind_mask
from engine.link.parameter import RECOMPUTE_RATIO
from engine.runtime import Batch, now_ms


class CacheBlend(LinkAlgorithm):
    """Keep the top `ratio` of cached tokens by deviation at the check layer (1), recompute
    only those (and the new tokens) above it.

    Default (`cacheblend-15`): layers 0..check for every token, then the value deviation (sum
    of squares of fresh V minus cached V over heads and head dim), as CacheBlend's code does
    (YaoJiayi/CacheBlend, vllm_blend xformers.py). The selected rows continue from layer 2.

    Variant `key` (`cacheblend-key-15`): the key deviation of LMCache's blender
    (lmcache/v1/compute/blend/blender.py, `process_qkv`): squared L2 over heads and head dim
    between fresh and cached K after RoPE at the check layer. RoPE rotates both by the same
    orthogonal map at a position, so we compare them before RoPE (the same number, two
    rotations fewer). Only layer 0 runs for every token; at the check layer every cached token
    gets only its K projection (not counted as a token-layer), and the selected rows and the
    new tokens run layers check..L-1. Choices: LMCache floors the count at 1 token; we do not,
    so ratio 0 is naive; the count is `int(ratio · #cached)`, as for the value deviation.
    """

    name = "cacheblend"
    summary = ("layers 0–1 for all tokens, then the top *ratio* of cached tokens by value "
               "deviation (variant key: by key deviation, layer 0 for all)")
    paper = ("CacheBlend (Yao et al., EuroSys 2025, arXiv 2405.16444); key variant as LMCache "
             "serves it (LMCache blender)")
    color = "#1c7ed6"
    parameters = (RECOMPUTE_RATIO,)
    variants = ("key",)
    check_layer = 1

    def link(self, job: LinkInput) -> LinkResult:
        model, layout = job.model, job.layout
        t0 = now_ms(model.device)
        kv, cached = self.gather(job)
        t1 = now_ms(model.device)
        n, num_layers = layout.num_tokens, model.spec.num_layers
        check = min(self.check_layer, num_layers - 1)
        by_key = self.spec.variant == "key"
        first = check if by_key else check + 1  # the first layer only selected rows run
        cached_idx = torch.nonzero(cached).flatten().to(model.device)
        h = model.embed(torch.tensor(layout.token_ids, device=model.device))
        if by_key:
            h = model.forward(h, Batch.run(0, n, model.device), kv, layers=range(check)).h
            fresh = model.key_pre(check, h[cached_idx])  # [num_kv_heads, C, head_dim]
            old = torch.cat([c.k[check] for c in job.chunks], dim=1) if job.chunks else fresh
        else:
            old = kv.v[check][:, cached_idx].clone()
            h = model.forward(h, Batch.run(0, n, model.device), kv, layers=range(first)).h
            fresh = kv.v[check][:, cached_idx]
        deviation = (fresh.float() - old.float()).pow(2).sum(dim=(0, 2))  # [C]
        num_top = int(len(cached_idx) * float(self.value(RECOMPUTE_RATIO)))
        top = cached_idx[torch.topk(deviation, num_top).indices].cpu()
        recompute = torch.zeros(n, dtype=torch.bool)
        recompute[top] = True
        positions = torch.nonzero(recompute | ~cached).flatten()
        logits = final_pass(model, layout, kv, positions, range(first, num_layers),
                            h=h[positions.to(model.device)])
        t2 = now_ms(model.device)
        work = n * first + len(positions) * (num_layers - first)
        return LinkResult(self.label, layout, kv, logits, kind_mask(cached, recompute),
                          len(positions), work, {"gather_ms": t1 - t0, "forward_ms": t2 - t1})
