"""The prefix-caching baseline (vLLM/SGLang): reuse an earlier request's K/V for the longest
token prefix the two share, compute the rest. Chunk caches are not used."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from engine.link.base import Kind, LinkAlgorithm, LinkInput, LinkResult, final_pass
from engine.runtime import KVBuffer, now_ms


@dataclass(frozen=True)
class PrefixCacheStats:
    num_entries: int
    num_bytes: int
    budget_bytes: int


class PrefixCache:
    """Earlier requests' prompt K/V (after RoPE: positions match), least recently used first,
    kept as copies of the prompt positions only, under a byte budget of their own. The engine
    reads and puts under its request lock, one request at a time.

    # each entry's k, v: [num_layers, num_kv_heads, capacity >= num_keys, head_dim], after
    # RoPE; its first num_keys positions hold the prompt whose token ids are its key
    """

    def __init__(self, max_entries: int, budget_bytes: int) -> None:
        self.max_entries, self.budget_bytes = max_entries, budget_bytes
        self._entries: OrderedDict[tuple[int, ...], KVBuffer] = OrderedDict()
        self._lock = threading.Lock()

    def longest(self, token_ids: tuple[int, ...]) -> tuple[int, KVBuffer | None]:
        """Length of the longest prefix of token_ids seen before, and whose K/V hold it."""
        best, best_kv = 0, None
        with self._lock:
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
        """Keep a copy of kv's first len(token_ids) positions (the request's own buffer is
        left to its owner); the oldest entries go when over the count or the byte budget.
        The copy goes into the memory of an entry that leaves when one is large enough:
        fresh memory faults in every page, which made a 2K-token put ~40 ms here, most of it."""
        n = len(token_ids)
        need = 2 * kv.k[:, :, :n].nbytes
        if need > self.budget_bytes:
            return
        with self._lock:
            self._entries.pop(token_ids, None)
            room = None  # the smallest leaving entry that holds n positions
            while self._entries and (len(self._entries) >= self.max_entries
                                     or self._num_bytes() + need > self.budget_bytes):
                _, old = self._entries.popitem(last=False)
                if old.capacity >= n and (room is None or old.capacity < room.capacity):
                    room = old
            if room is not None and self._num_bytes() + _num_bytes(room) <= self.budget_bytes:
                room.k[:, :, :n] = kv.k[:, :, :n]
                room.v[:, :, :n] = kv.v[:, :, :n]
                entry = KVBuffer(room.k, room.v, n)
            else:
                entry = KVBuffer(kv.k[:, :, :n].clone(), kv.v[:, :, :n].clone(), n)
            self._entries[token_ids] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def stats(self) -> PrefixCacheStats:
        with self._lock:
            return PrefixCacheStats(len(self._entries), self._num_bytes(), self.budget_bytes)

    def _num_bytes(self) -> int:
        return sum(map(_num_bytes, self._entries.values()))


def _num_bytes(kv: KVBuffer) -> int:
    """The memory an entry holds (its capacity, not only its prompt's positions)."""
    return kv.k.nbytes + kv.v.nbytes


class PrefixCaching(LinkAlgorithm):
    """Reuse the K/V of the longest token prefix of an earlier request, compute everything
    after it. A new system prompt or another document order reuses (almost) nothing, which is
    the point it shows. The engine's PrefixCache is given to it at construction."""

    name = "prefix_cache"
    reads_chunks = False

    def __init__(self, label: str, value: float | int | None = None, *,
                 cache: PrefixCache) -> None:
        super().__init__(label, value)
        self.cache = cache

    def link(self, job: LinkInput) -> LinkResult:
        model, layout = job.model, job.layout
        t0 = now_ms(model.device)
        n = layout.num_tokens
        kv = model.new_kv(job.capacity, reuse=True)
        reused, old = self.cache.longest(layout.token_ids)
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
        self.cache.put(link.layout.token_ids, link.kv)
