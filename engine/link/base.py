"""Link compiled chunks into one prompt's KV: the interface every algorithm implements.

Every algorithm fills a KV buffer for positions 0..N-1 from cached K/V (rotated from their
compile positions to their global ones, once per request), then computes fresh Q/K/V for a
*recompute set* of positions, layer by layer, overwriting the cached K/V there; the recomputed
queries attend causally over all N keys. Uncached tokens (prefix, suffix) are always in the
set. The algorithms differ only in which cached positions join the set. The trivial one,
`naive`, adds none; `full_recompute` ignores the cache; `legolink` is EPIC's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar, Protocol

import torch

from engine.link.layout import Layout
from engine.runtime import Batch, KVBuffer, Model, now_ms


class Kind(IntEnum):
    """What happened to a position of the linked prompt."""

    NEW = 0  # not cached (prefix, suffix): always computed
    CACHED = 1  # K/V reused from a cache
    RECOMPUTED = 2  # cached, but computed afresh in this request


@dataclass(frozen=True)
class Parameter:
    """An algorithm's one knob: its keyword in a request, its range, and how a label writes it
    ("legolink-16" is k = 16; "cacheblend-15" is ratio 0.15, written in percent)."""

    keyword: str  # the Request / EngineConfig field: "recompute_k" or "recompute_ratio"
    percent: bool  # the label writes round(100 * value)

    def write(self, value: float) -> str:
        return str(round(100 * value)) if self.percent else str(int(value))

    def read(self, text: str) -> float | int:
        return int(text) / 100 if self.percent else int(text)


RECOMPUTE_K = Parameter("recompute_k", percent=False)  # tokens per chunk
RECOMPUTE_RATIO = Parameter("recompute_ratio", percent=True)  # share of cached tokens


class CachedChunk(Protocol):
    """A compiled chunk as linking reads it (the store's `ChunkKV` is one).

    # k, v: [num_layers, num_kv_heads, T, head_dim]; k before RoPE, compiled at positions 0..T-1
    """

    k: torch.Tensor
    v: torch.Tensor


@dataclass
class LinkInput:
    """What an algorithm links: the prompt's layout, its chunks' KV, room to decode."""

    model: Model
    layout: Layout
    chunks: list[CachedChunk]  # one per layout.chunks entry, in prompt order
    capacity: int  # KV positions to allocate: the prompt plus the new tokens


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

    A subclass names itself (`name`), declares its `parameter` if it has one, and overrides
    `select` (which cached positions to recompute) or, when the selection needs the forward
    itself (CacheBlend), `link`. `engine/algorithms.py` registers it.
    """

    name: ClassVar[str]
    parameter: ClassVar[Parameter | None] = None
    reads_chunks: ClassVar[bool] = True  # False: ignores the chunk store (no hits counted)

    def __init__(self, label: str, value: float | int | None = None) -> None:
        self.label, self.value = label, value

    def select(self, layout: Layout) -> torch.Tensor:
        """[N] bool: the cached chunk positions to recompute (the baseline: none)."""
        return torch.zeros(layout.num_tokens, dtype=torch.bool)

    def link(self, job: LinkInput) -> LinkResult:
        model, layout = job.model, job.layout
        t0 = now_ms(model.device)
        kv, cached = self.gather(job)
        t1 = now_ms(model.device)
        recompute = (self.select(layout) & cached) if self.reads_chunks else cached.clone()
        positions = torch.nonzero(recompute | ~cached).flatten()
        logits = final_pass(model, layout, kv, positions, range(model.spec.num_layers))
        t2 = now_ms(model.device)
        return LinkResult(self.label, layout, kv, logits, kind_mask(cached, recompute),
                          len(positions), len(positions) * model.spec.num_layers,
                          {"gather_ms": t1 - t0, "forward_ms": t2 - t1})

    def after_decode(self, link: LinkResult) -> None:
        """Called once decoding has finished with `link.kv` (prefix caching keeps a copy)."""

    def gather(self, job: LinkInput) -> tuple[KVBuffer, torch.Tensor]:
        """Buffer with every chunk's K rotated to its global positions; [N] bool of cached."""
        model, layout = job.model, job.layout
        kv = model.new_kv(job.capacity, reuse=True)
        kv.num_keys = layout.num_tokens
        cached = torch.zeros(layout.num_tokens, dtype=torch.bool)
        for seg in layout.chunks:
            cached[seg.start:seg.end] = True
        if not self.reads_chunks or not job.chunks:
            return kv, cached
        cos, sin = model.rope.table(layout.num_tokens)  # [N, head_dim // 2], cached
        longest = max(len(seg.token_ids) for seg in layout.chunks)
        scratch = kv.k.new_empty(kv.k.shape[1], longest, kv.k.shape[3] // 2)
        # Layer by layer, so that RoPE's scratch stays in cache: re-rotation is memory-bound.
        for i in range(model.spec.num_layers):
            for seg, chunk in zip(layout.chunks, job.chunks, strict=True):
                where = slice(seg.start, seg.end)
                model.rope.rotate_into(kv.k[i, :, where], chunk.k[i], cos[where], sin[where],
                                       scratch[:, :len(seg.token_ids)])
        for seg, chunk in zip(layout.chunks, job.chunks, strict=True):
            kv.v[:, :, seg.start:seg.end] = chunk.v
        return kv, cached


def final_pass(model: Model, layout: Layout, kv: KVBuffer, positions: torch.Tensor,
               layers: range, h: torch.Tensor | None = None) -> torch.Tensor:
    """Run `layers` for `positions` ([n] on the host, sorted, ending at N-1) -> logits of the
    last position. `h` gives the positions' hidden states when earlier layers ran already."""
    if int(positions[-1]) != layout.num_tokens - 1:
        raise ValueError("the last prompt position must be computed: the suffix is empty")
    if h is None:
        ids = torch.tensor(layout.token_ids)[positions]
        h = model.embed(ids)
    out = model.forward(h, Batch.of(positions, layout.num_tokens, model.device), kv, layers)
    return model.logits(out.h[-1:])[0]


def kind_mask(cached: torch.Tensor, recompute: torch.Tensor) -> torch.Tensor:
    """[N] int8 of Kind from the cached and recomputed position sets."""
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
    parameter = RECOMPUTE_K

    def select(self, layout: Layout) -> torch.Tensor:
        chosen = super().select(layout)
        for seg in layout.chunks:
            if seg.start != 0:
                chosen[seg.start:seg.start + min(int(self.value), len(seg.token_ids))] = True
        return chosen
