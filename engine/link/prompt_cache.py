"""The prefix cache the prefix-caching baseline reads (vLLM/SGLang): earlier requests' prompt K/V,
found by the longest token prefix a new prompt shares with one of them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from engine.runtime import KVBuffer


@dataclass(frozen=True)
class PrefixCacheStats:
    num_entries: int
    num_bytes: int
    budget_bytes: int


class PrefixCache:
    """Earlier requests' prompt K/V (after RoPE: positions match), least recently used first,
    kept as copies of the prompt positions only, under a byte budget of their own. The engine
    reads and puts under its request lock, one request at a time. Entries are keyed by
    (salt, token ids): a request reuses only entries of its own salt, so that how much it
    reuses never tells what a request of another salt (another visitor) held.

    # each entry's k, v: [num_layers, num_kv_heads, capacity >= num_keys, head_dim], after
    # RoPE; its first num_keys positions hold the prompt whose token ids are its key
    """

    def __init__(self, max_entries: int, budget_bytes: int) -> None:
        self.max_entries, self.budget_bytes = max_entries, budget_bytes
        self._entries: OrderedDict[tuple[str, tuple[int, ...]], KVBuffer] = OrderedDict()
        self._lock = threading.Lock()

    def longest(self, token_ids: tuple[int, ...], salt: str = "") -> tuple[int, KVBuffer | None]:
        """Length of the longest prefix of token_ids seen before under `salt`, and whose K/V
        hold it."""
        best, best_kv = 0, None
        with self._lock:
            for (entry_salt, ids), kv in self._entries.items():
                if entry_salt != salt:
                    continue
                m = 0
                for a, b in zip(ids, token_ids, strict=False):
                    if a != b:
                        break
                    m += 1
                if m > best:
                    best, best_kv = m, kv
        return best, best_kv

    def put(self, token_ids: tuple[int, ...], kv: KVBuffer, salt: str = "") -> None:
        """Keep a copy of kv's first len(token_ids) positions (the request's own buffer is
        left to its owner); the oldest entries go when over the count or the byte budget.
        The copy goes into the memory of an entry that leaves when one is large enough:
        fresh memory faults in every page, which made a 2K-token put ~40 ms here, most of it."""
        n = len(token_ids)
        need = 2 * kv.k[:, :, :n].nbytes
        if need > self.budget_bytes:
            return
        with self._lock:
            self._entries.pop((salt, token_ids), None)
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
            self._entries[(salt, token_ids)] = entry

    def clear(self, salt: str | None = None) -> None:
        """Drop every entry, or (with a salt) those of that salt only."""
        with self._lock:
            for key in [k for k in self._entries if salt is None or k[0] == salt]:
                del self._entries[key]

    def stats(self, salt: str | None = None) -> PrefixCacheStats:
        """Entries and bytes kept, all of them or (with a salt) that salt's."""
        with self._lock:
            return PrefixCacheStats(len(self._own(salt)), self._num_bytes(salt), self.budget_bytes)

    def _own(self, salt: str | None) -> list[KVBuffer]:
        return [kv for (s, _), kv in self._entries.items() if salt is None or s == salt]

    def _num_bytes(self, salt: str | None = None) -> int:
        return sum(map(_num_bytes, self._own(salt)))


def _num_bytes(kv: KVBuffer) -> int:
    """The memory an entry holds (its capacity, not only its prompt's positions)."""
    return kv.k.nbytes + kv.v.nbytes
