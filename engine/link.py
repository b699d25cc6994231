"""Link compiled chunks into one prompt's KV: LegoLink and the baselines, behind one interface.

Every algorithm fills a KV buffer for positions 0..N-1 from cached K/V (rotated from their
compile positions to their global ones, once per request), then computes fresh Q/K/V for a
*recompute set* of positions, layer by layer, overwriting the cached K/V there; the recomputed
queries attend causally over all N keys. Uncached tokens (prefix, suffix) are always in the
set. The algorithms differ only in which cached positions join the set.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import torch

from engine.model import KVBuffer, Model, now_ms
from engine.prompt import Layout
from engine.store import ChunkKV


class Kind(IntEnum):
    """What happened to a position of the linked prompt."""

    NEW = 0  # not cached (prefix, suffix): always computed
    CACHED = 1  # K/V reused from a cache
    RECOMPUTED = 2  # cached, but computed afresh in this request


@dataclass
class LinkResult:
    """The linked prompt, ready for decoding."""

    algorithm: str  # label with its parameter, e.g. "legolink-16"
    layout: Layout
    kv: KVBuffer  # positions 0..N-1 filled; capacity leaves room to decode
    logits: torch.Tensor  # [vocab_size] fp32, at the last prompt position
    mask: torch.Tensor  # [N] int8 of Kind: exactly the set the final pass computed
    num_recomputed: int  # positions computed in the final pass (new + recomputed)
    num_token_layers: int  # (position, layer) pairs computed over all layers: the work done
    timings_ms: dict[str, float] = field(default_factory=dict)



class LinkAlgorithm:
    """Base: gather the cached K/V, pick the cached positions to recompute, run one pass.

    Subclasses override `select` (the trivial baseline, `naive`, selects nothing) or, when the
    selection needs the forward itself (CacheBlend), `link`.
    """

    name: ClassVar[str]
    reads_chunks: ClassVar[bool] = True  # False: ignores the chunk store (no hits counted)

    @property
    def label(self) -> str:
        return self.name

    def select(self, layout: Layout) -> torch.Tensor:
        """[N] bool: the cached chunk positions to recompute."""
        return torch.zeros(layout.num_tokens, dtype=torch.bool)

    def link(self, model: Model, layout: Layout, chunks: list[ChunkKV],
             capacity: int) -> LinkResult:
        t0 = now_ms(model.device)
        kv, cached = self._gather(model, layout, chunks, capacity)
        t1 = now_ms(model.device)
        recompute = (self.select(layout) & cached) if self.reads_chunks else cached.clone()
        positions = torch.nonzero(recompute | ~cached).flatten()
        logits = _final_pass(model, layout, kv, positions, range(model.spec.num_layers))
        t2 = now_ms(model.device)
        return LinkResult(self.label, layout, kv, logits, _mask(cached, recompute),
                          len(positions), len(positions) * model.spec.num_layers,
                          {"gather_ms": t1 - t0, "forward_ms": t2 - t1})

    def _gather(self, model: Model, layout: Layout, chunks: list[ChunkKV],
                capacity: int) -> tuple[KVBuffer, torch.Tensor]:
        """Buffer with every chunk's K rotated to its global positions; [N] bool of cached."""
        kv = model.new_kv(capacity)
        kv.num_keys = layout.num_tokens
        cached = torch.zeros(layout.num_tokens, dtype=torch.bool)
        for seg, chunk in zip(layout.chunks, chunks, strict=True):
            cached[seg.start:seg.end] = True
            if not self.reads_chunks:
                continue
            cos, sin = model.rope.cos_sin(torch.arange(seg.start, seg.end, device=model.device))
            model.rope.rotate_into(kv.k[:, :, seg.start:seg.end], chunk.k, cos, sin)
            kv.v[:, :, seg.start:seg.end] = chunk.v
        return kv, cached


def _final_pass(model: Model, layout: Layout, kv: KVBuffer, positions: torch.Tensor,
                layers: range, h: torch.Tensor | None = None) -> torch.Tensor:
    """Run `layers` for `positions` (sorted, ending at N-1) -> logits of the last position."""
    if int(positions[-1]) != layout.num_tokens - 1:
        raise ValueError("the last prompt position must be computed: the suffix is empty")
    if h is None:
        ids = torch.tensor(layout.token_ids, device=model.device)[positions.to(model.device)]
        h = model.embed(ids)
    h = model.forward(h, positions, kv, layers=layers)
    return model.logits(h[-1:])[0]


def _mask(cached: torch.Tensor, recompute: torch.Tensor) -> torch.Tensor:
    mask = torch.full(cached.shape, Kind.NEW, dtype=torch.int8)
    mask[cached] = Kind.CACHED
    mask[recompute] = Kind.RECOMPUTED
    return mask


class FullRecompute(LinkAlgorithm):
    """Ignore the cache; compute every position: the accuracy reference."""

    name = "full_recompute"
    reads_chunks = False


class Naive(LinkAlgorithm):
    """Reuse every cached token as compiled (PIC without correction): one sink per chunk."""

    name = "naive"


class LegoLink(LinkAlgorithm):
    """EPIC: recompute the first k tokens of every chunk not at global position 0."""

    name = "legolink"

    def __init__(self, recompute_k: int = 16) -> None:
        self.recompute_k = recompute_k

    @property
    def label(self) -> str:
        return f"legolink-{self.recompute_k}"

    def select(self, layout: Layout) -> torch.Tensor:
        chosen = super().select(layout)
        for seg in layout.chunks:
            if seg.start != 0:
                chosen[seg.start:seg.start + min(self.recompute_k, len(seg.token_ids))] = True
        return chosen


class CacheBlend(LinkAlgorithm):
    """CacheBlend: layers 0-1 for every token; at check layer 1 keep the top `ratio` of cached
    tokens by value deviation (sum of squares of fresh V minus cached V, over heads and head
    dim, as CacheBlend's code does), recompute only those (and the new tokens) above it."""

    name = "cacheblend"
    check_layer = 1

    def __init__(self, recompute_ratio: float = 0.15) -> None:
        self.recompute_ratio = recompute_ratio

    @property
    def label(self) -> str:
        return f"cacheblend-{round(self.recompute_ratio * 100)}"

    def link(self, model: Model, layout: Layout, chunks: list[ChunkKV],
             capacity: int) -> LinkResult:
        t0 = now_ms(model.device)
        kv, cached = self._gather(model, layout, chunks, capacity)
        t1 = now_ms(model.device)
        n, num_layers = layout.num_tokens, model.spec.num_layers
        check = min(self.check_layer, num_layers - 1)
        cached_idx = torch.nonzero(cached).flatten().to(model.device)
        v_cached = kv.v[check][:, cached_idx].clone()
        everything = torch.arange(n, device=model.device)
        h = model.embed(torch.tensor(layout.token_ids, device=model.device))
        h = model.forward(h, everything, kv, layers=range(check + 1))
        deviation = (kv.v[check][:, cached_idx].float() - v_cached.float()).pow(2).sum(dim=(0, 2))
        num_top = int(len(cached_idx) * self.recompute_ratio)
        top = cached_idx[torch.topk(deviation, num_top).indices].cpu()
        recompute = torch.zeros(n, dtype=torch.bool)
        recompute[top] = True
        positions = torch.nonzero(recompute | ~cached).flatten()
        logits = _final_pass(model, layout, kv, positions, range(check + 1, num_layers),
                             h=h[positions.to(model.device)])
        t2 = now_ms(model.device)
        work = n * (check + 1) + len(positions) * (num_layers - check - 1)
        return LinkResult(self.label, layout, kv, logits, _mask(cached, recompute),
                          len(positions), work, {"gather_ms": t1 - t0, "forward_ms": t2 - t1})


class PrefixCache:
    """Earlier requests' prompt K/V (after RoPE: positions match), least recently used first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, ...], KVBuffer] = OrderedDict()

    def longest(self, token_ids: tuple[int, ...]) -> tuple[int, KVBuffer | None]:
        """Length of the longest prefix of token_ids seen before, and whose K/V hold it."""
        best, best_kv = 0, None
        for ids, kv in self._entries.items():
            m = 0
            for a, b in zip(ids, token_ids, strict=False):
                if a != b:
                    break
                m += 1
            if m > best:
                best, best_kv = m, kv
        return best, best_kv

    def put(self, token_ids: tuple[int, ...], kv: KVBuffer) -> None:
        # The buffer itself, not a copy: decoding only writes past the prompt.
        self._entries[token_ids] = kv
        self._entries.move_to_end(token_ids)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class PrefixCaching(LinkAlgorithm):
    """vLLM/SGLang prefix caching: reuse the K/V of the longest token prefix of an earlier
    request, compute everything after it. Chunk caches are not used: a new system prompt or
    another document order reuses (almost) nothing, which is the point it shows."""

    name = "prefix_cache"
    reads_chunks = False

    def __init__(self, cache: PrefixCache) -> None:
        self.cache = cache

    def link(self, model: Model, layout: Layout, chunks: list[ChunkKV],
             capacity: int) -> LinkResult:
        t0 = now_ms(model.device)
        n = layout.num_tokens
        kv = model.new_kv(capacity)
        kv.num_keys = n
        reused, old = self.cache.longest(layout.token_ids)
        reused = min(reused, n - 1)  # the last position is computed to get its logits
        if reused:
            kv.k[:, :, :reused] = old.k[:, :, :reused]
            kv.v[:, :, :reused] = old.v[:, :, :reused]
        t1 = now_ms(model.device)
        positions = torch.arange(reused, n)
        logits = _final_pass(model, layout, kv, positions, range(model.spec.num_layers))
        t2 = now_ms(model.device)
        self.cache.put(layout.token_ids, kv)
        chunk_pos = torch.zeros(n, dtype=torch.bool)
        for seg in layout.chunks:
            chunk_pos[seg.start:seg.end] = True
        mask = torch.full((n,), Kind.NEW, dtype=torch.int8)
        mask[chunk_pos] = Kind.RECOMPUTED
        mask[:reused] = Kind.CACHED
        return LinkResult(self.label, layout, kv, logits, mask, n - reused,
                          (n - reused) * model.spec.num_layers,
                          {"gather_ms": t1 - t0, "forward_ms": t2 - t1})


ALGORITHMS = ("full_recompute", "prefix_cache", "naive", "cacheblend", "legolink")


def make_algorithm(name: str, recompute_k: int = 16, recompute_ratio: float = 0.15,
                   prefix_cache: PrefixCache | None = None) -> LinkAlgorithm:
    """The registry: an algorithm by its name, with its parameter."""
    if name == "full_recompute":
        return FullRecompute()
    if name == "naive":
        return Naive()
    if name == "legolink":
        return LegoLink(recompute_k)
    if name == "cacheblend":
        return CacheBlend(recompute_ratio)
    if name == "prefix_cache":
        return PrefixCaching(prefix_cache if prefix_cache is not None else PrefixCache(1))
    raise ValueError(f"unknown algorithm {name!r}: choose from {', '.join(ALGORITHMS)}")
