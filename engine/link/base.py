"""Link compiled chunks into one prompt's KV: the contract every algorithm implements.

Every algorithm fills a KV buffer for positions 0..N-1 from cached K/V (rotated from their
compile positions to their global ones, once per request), then computes fresh Q/K/V for a
*recompute set* of positions, layer by layer, overwriting the cached K/V there; the recomputed
queries attend causally over all N keys. Uncached tokens (prefix, suffix) are always in the
set. The algorithms differ only in which cached positions join the set, and the mask each
reports is exactly the set its final pass computed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, ClassVar, Protocol

import torch

from engine.link.compile import DEFAULT_COMPILE, CompileVariant
from engine.link.layout import Layout
from engine.link.parameter import Parameter
from engine.link.prompt_cache import PrefixCache
from engine.runtime import Batch, KVBuffer, Model, now_ms

if TYPE_CHECKING:
    from engine.link.spec import AlgorithmSpec


class Kind(IntEnum):
    """What happened to a position of the linked prompt."""

    NEW = 0  # not cached (prefix, suffix): always computed
    CACHED = 1  # K/V reused from a cache
    RECOMPUTED = 2  # cached, but computed afresh in this request


@dataclass(frozen=True)
class Counts:
    """Prompt positions by what happened to them (a mask of `Kind`, counted)."""

    num_new: int
    num_cached: int
    num_recomputed: int

    @property
    def num_computed(self) -> int:
        return self.num_new + self.num_recomputed

    @property
    def recompute_share(self) -> float:
        """Share of the cached positions that were recomputed (0 when none are cached)."""
        cached = self.num_cached + self.num_recomputed
        return self.num_recomputed / cached if cached else 0.0

    @classmethod
    def of(cls, mask: tuple[int, ...]) -> Counts:
        return cls(mask.count(Kind.NEW), mask.count(Kind.CACHED), mask.count(Kind.RECOMPUTED))


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
    cache_salt: str = ""  # whose earlier requests a prompt cache may reuse (Request.cache_salt)


@dataclass
class LinkResult:
    """The linked prompt, ready for decoding."""

    algorithm: str  # label with its parameter, e.g. "legolink-16"
    layout: Layout  # as linked: an algorithm that reorders chunks reports its own order
    kv: KVBuffer  # positions 0..N-1 filled; capacity leaves room to decode
    logits: torch.Tensor  # [vocab_size] fp32, at the last prompt position
    mask: torch.Tensor  # [N] int8 of Kind: exactly the set the final pass computed
    num_recomputed: int  # positions computed in the final pass (new + recomputed)
    num_token_layers: int  # (position, layer) pairs computed over all layers: the work done
    timings_ms: dict[str, float] = field(default_factory=dict)
    # How decoding runs at a position past the prompt (None: a plain causal run of one): for
    # an algorithm whose attention or RoPE positions differ from the plain ones (APE).
    decode_batch: Callable[[int], Batch] | None = None


@dataclass(frozen=True)
class LinkContext:
    """What an engine lends every algorithm it makes: state that outlives one request."""

    prefix_cache: PrefixCache


class LinkAlgorithm:
    """Base: gather the cached K/V, pick the cached positions to recompute, run one pass.

    A subclass declares itself in class attributes (the registry, request checks, labels, the
    command line, the app's controls, the figures and the README's table read them there) and
    overrides `select` (which cached positions to recompute) or, when the choice needs the
    forward itself (CacheBlend, QueryLink), `link`. It is listed in engine/link/registry.py.
    """

    name: ClassVar[str]  # as requests, labels and results name it: "legolink"
    summary: ClassVar[str]  # what it recomputes among cached chunk tokens, in one line
    paper: ClassVar[str] = ""  # where it comes from
    color: ClassVar[str] = "#868e96"  # its colour in every figure
    # Its knobs; the first is written in its label when a label can carry it ("legolink-16").
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    variants: ClassVar[tuple[str, ...]] = ()  # settings a label names: name-variant[-number]
    compile_variant: ClassVar[CompileVariant] = DEFAULT_COMPILE  # how its chunks are compiled
    reads_chunks: ClassVar[bool] = True  # False: ignores the chunk store (no hits counted)
    # True: reuses the K/V of earlier requests' identical token prefixes, so its cost and its
    # reuse depend on the requests before it (prefix caching).
    reuses_prefixes: ClassVar[bool] = False

    def __init__(self, spec: AlgorithmSpec, context: LinkContext) -> None:
        self.spec, self.context, self.label = spec, context, spec.label

    @classmethod
    def label_parameter(cls) -> Parameter | None:
        """The parameter its labels carry: its first, when a label can write it."""
        first = cls.parameters[0] if cls.parameters else None
        return first if first is not None and first.labelled else None

    def value(self, parameter: Parameter) -> int | float:
        """This request's value of one of its parameters."""
        return self.spec[parameter.keyword]

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
        return gather(job, self.reads_chunks)


def gather(job: LinkInput, read_chunks: bool = True) -> tuple[KVBuffer, torch.Tensor]:
    """A buffer for the prompt holding every chunk's K/V at its global positions (K rotated
    there), or nothing of the chunks when not `read_chunks`; -> (buffer, [N] bool of cached)."""
    model, layout = job.model, job.layout
    kv = model.new_kv(job.capacity, reuse=True)
    kv.num_keys = layout.num_tokens
    cached = torch.zeros(layout.num_tokens, dtype=torch.bool)
    for seg in layout.chunks:
        cached[seg.start:seg.end] = True
    if not read_chunks or not job.chunks:
        return kv, cached
    rotate_chunks(model, layout, job.chunks, kv, layer_by_layer=not kv.k.is_cuda)
    for seg, chunk in zip(layout.chunks, job.chunks, strict=True):
        kv.v[:, :, seg.start:seg.end] = chunk.v
    return kv, cached


def rotate_chunks(model: Model, layout: Layout, chunks: list, kv: KVBuffer,
                  layer_by_layer: bool) -> None:
    """Write every chunk's K, rotated to its global positions, into `kv` (the same values
    either way). On a CPU re-rotation is memory-bound: layer by layer, RoPE's scratch stays in
    cache. On a GPU it is bound by kernel launches (a 30-layer model with 64 chunks made 11,520
    small rotations per request, tens of ms on an H200): one rotation per chunk, all layers."""
    cos, sin = model.rope.table(layout.num_tokens)  # [N, head_dim // 2], cached
    if not layer_by_layer:
        for seg, chunk in zip(layout.chunks, chunks, strict=True):
            where = slice(seg.start, seg.end)
            model.rope.rotate_into(kv.k[:, :, where], chunk.k, cos[where], sin[where])
        return
    longest = max(len(seg.token_ids) for seg in layout.chunks)
    scratch = kv.k.new_empty(kv.k.shape[1], longest, kv.k.shape[3] // 2)
    for i in range(model.spec.num_layers):
        for seg, chunk in zip(layout.chunks, chunks, strict=True):
            where = slice(seg.start, seg.end)
            model.rope.rotate_into(kv.k[i, :, where], chunk.k[i], cos[where], sin[where],
                                   scratch[:, :len(seg.token_ids)])


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


@dataclass(frozen=True)
class FloorTiming:
    """The floor under any link: the uncached positions alone over an already linked buffer."""

    ms: float
    num_positions: int


@torch.inference_mode()
def floor_pass(job: LinkInput) -> FloorTiming:
    """Time computing only the uncached positions (prefix, question) over a buffer already
    holding the linked chunks: naive's final pass without the request handling and the
    gather (neither is timed)."""
    model = job.model
    kv, cached = gather(job)
    positions = torch.nonzero(~cached).flatten()
    start = now_ms(model.device)
    final_pass(model, job.layout, kv, positions, range(model.spec.num_layers))
    return FloorTiming(now_ms(model.device) - start, len(positions))
