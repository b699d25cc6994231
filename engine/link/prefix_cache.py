"""The prefix-caching baseline (vLLM/SGLang): reuse an earlier request's K/V for the longest
token prefix the two share, compute the rest. Chunk caches are not used."""

from __future__ import annotations

import torch

from engine.link.base import Kind, LinkAlgorithm, LinkInput, LinkResult, final_pass
from engine.runtime import now_ms


class PrefixCaching(LinkAlgorithm):
    """Reuse the K/V of the longest token prefix of an earlier request, compute everything
    after it. A new system prompt or another document order reuses (almost) nothing, which is
    the point it shows. It reads the engine's PrefixCache, lent in its context."""

    name = "prefix_cache"
    summary = "everything after the longest token prefix seen in an earlier request"
    paper = "prefix caching (vLLM, SGLang)"
    color = "#7048e8"
    reads_chunks = False
    reuses_prefixes = True
    salt = ""  # the request's cache_salt, set by link

    def link(self, job: LinkInput) -> LinkResult:
        model, layout = job.model, job.layout
        t0 = now_ms(model.device)
        n = layout.num_tokens
        kv = model.new_kv(job.capacity, reuse=True)
        self.salt = job.cache_salt  # one instance per request: after_decode puts under it
        reused, old = self.context.prefix_cache.longest(layout.token_ids, self.salt)
        reused = min(reused, n - 1)  # the last position is computed to get its logits
        if reused:
            kv.k[:, :, :reused] = old.k[:, :, :reused]
            kv.v[:, :, :reused] = old.v[:, :, :reused]
        t1 = now_ms(model.device)
        positions = torch.arange(reused, n)
        logits = final_pass(model, layout, kv, positions, range(model.spec.num_layers))
        t2 = now_ms(model.device)
        mask = torch.full((n,), Kind.NEW, dtype=torch.int8)
        for seg in layout.chunks:
            mask[seg.start:seg.end] = Kind.RECOMPUTED
        mask[:reused] = Kind.CACHED
        return LinkResult(self.label, layout, kv, logits, mask, n - reused,
                          (n - reused) * model.spec.num_layers,
                          {"gather_ms": t1 - t0, "forward_ms": t2 - t1})

    def after_decode(self, link: LinkResult) -> None:
        self.context.prefix_cache.put(link.layout.token_ids, link.kv, self.salt)
