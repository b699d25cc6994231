"""What the store remembers of the chunks it evicted: enough to compile one again when a
request names it, and to say "was evicted" rather than "is not in the store"."""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from engine.store.chunk import ChunkKV

MAX_EVICTED_REMEMBERED = 4096


class EvictedChunk(NamedTuple):
    """An evicted chunk's record: cheap (token ids, no KV), and what its key was made of."""

    title: str
    token_ids: tuple[int, ...]
    salt: str
    variant: str


class Evicted:
    """The records of the last `limit` evicted chunks, by key, the newest last."""

    def __init__(self, limit: int = MAX_EVICTED_REMEMBERED) -> None:
        self.limit = limit
        self._records: OrderedDict[str, EvictedChunk] = OrderedDict()

    def add(self, chunk: ChunkKV) -> None:
        self._records[chunk.key] = EvictedChunk(chunk.title, chunk.token_ids, chunk.salt,
                                                chunk.variant)
        self._records.move_to_end(chunk.key)
        while len(self._records) > self.limit:
            self._records.popitem(last=False)

    def get(self, key: str) -> EvictedChunk | None:
        return self._records.get(key)

    def pop(self, key: str) -> None:
        self._records.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def clear(self) -> None:
        self._records.clear()

    def recent(self, count: int) -> tuple[tuple[str, str], ...]:
        """(key, title) of the `count` newest records, newest last."""
        return tuple((k, r.title) for k, r in list(self._records.items())[-count:])
