"""The chunk store's shared tier: chunks in it checked on the way in, compiled once.

A local miss reads the chunk from the tier (a `SharedTier`: Redis); what comes back is decoded
and checked like a fresh compile (codec.py) and refused, with a message, when anything is off.
A chunk compiled here is written there. Two replicas asked for the same text compile it once:
the compile runs under the chunk's lock in the tier and the other replica waits for the value.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from engine.store.chunk import ChunkFormat, ChunkKV
from engine.store.codec import ChunkRefused, decode, encode
from engine.store.tier import SharedTier

log = logging.getLogger(__name__)
MAX_UNSHARED = 1024  # chunks compiled while the tier failed, written to it once it answers
MAX_PARALLEL_READS = 4  # one request's chunks read at once
MAX_WAITS = 3  # replicas that failed to deliver a chunk before this one compiles it anyway


class SharedChunks:
    """Chunks in the shared tier for one store's format, limits and budget."""

    def __init__(self, tier: SharedTier, fmt: ChunkFormat, max_tokens: int,
                 budget_bytes: int) -> None:
        self.tier, self.format = tier, fmt
        self.max_tokens, self.budget_bytes = max_tokens, budget_bytes
        self._lock = threading.Lock()
        self._unshared: OrderedDict[str, None] = OrderedDict()
        self.num_fetched = 0  # chunks read instead of compiled
        self.num_refused = 0  # entries refused (corrupt, another model's, out of limits)

    @property
    def available(self) -> bool:
        return self.tier.available

    def read(self, key: str, wait: bool = False) -> ChunkKV | str:
        """The checked chunk of `key` (once another replica has written it, if `wait`), or
        why there is none (absent, unreachable, refused and why), to end "chunk ... is not in
        the store ..." with."""
        data = self.tier.wait(key) if wait else self.tier.get(key)
        if data is None:
            if not self.tier.available:
                return "and the shared store is unreachable"
            return "nor in the shared store"
        try:
            chunk = decode(data, self.format, self.max_tokens, key=key)
            if chunk.num_bytes > self.budget_bytes:
                raise ChunkRefused(f"{chunk.num_bytes} bytes, over the store budget")
        except Exception as e:  # ChunkRefused, or anything a crafted value provokes
            with self._lock:
                self.num_refused += 1
            log.warning("shared chunk %s refused: %s", key, e)
            return f"and the shared store's copy was refused ({e})"
        with self._lock:
            self.num_fetched += 1
        return chunk

    def read_many(self, keys: list[str]) -> list[ChunkKV | str]:
        """`read` for each key, in parallel: one value's transfer overlaps another's checks
        (socket reads and sha256 release the GIL)."""
        if len(keys) == 1:
            return [self.read(keys[0])]
        with ThreadPoolExecutor(min(MAX_PARALLEL_READS, len(keys))) as pool:
            return list(pool.map(self.read, keys))

    def write(self, chunk: ChunkKV) -> None:
        """Write a chunk compiled here; one the tier did not take is written once it answers."""
        if not self.tier.put(chunk.key, encode(chunk, self.format)):
            with self._lock:
                self._unshared[chunk.key] = None
                while len(self._unshared) > MAX_UNSHARED:
                    self._unshared.popitem(last=False)

    def write_unshared(self, local: Callable[[str], ChunkKV | None]) -> None:
        """Write the chunks compiled while the tier failed (those `local` still holds)."""
        while self._unshared and self.tier.available:
            with self._lock:
                key, _ = self._unshared.popitem(last=False)
            chunk = local(key)
            if chunk is not None and not self.tier.put(key, encode(chunk, self.format)):
                with self._lock:
                    self._unshared[key] = None
                    self._unshared.move_to_end(key, last=False)
                return

    def read_or_compile(self, key: str, compile_fn: Callable[[], ChunkKV]) -> ChunkKV:
        """The chunk of `key` from the shared tier, else from `compile_fn()` — run under the
        chunk's lock in the tier, so that no other replica compiles it at the same time — and
        written there."""
        # Lock first, then read: the holder writes the value before it unlocks, so whoever
        # takes the lock next finds the value and nobody compiles it twice.
        token, waits = self.tier.lock(key), 0
        while token is None and waits < MAX_WAITS:  # another replica compiles it: wait
            chunk = self.read(key, wait=True)
            if isinstance(chunk, ChunkKV):
                return chunk
            token, waits = self.tier.lock(key), waits + 1  # it failed: our turn
        try:
            chunk = self.read(key)
            if not isinstance(chunk, ChunkKV):
                chunk = compile_fn()
                self.write(chunk)
            return chunk
        finally:
            self.tier.unlock(key, token)
