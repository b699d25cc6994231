"""The chunk store: compiled chunks keyed by content, in this replica's memory under a byte
budget (LRU), behind it a tier shared by replicas, persisted as safetensors files. Knows no
model: compiling is a function it is given. Imports nothing of the runtime."""

from engine.store.chunk import ChunkFormat, ChunkKV
from engine.store.codec import ChunkRefused
from engine.store.prefetch import Prefetcher
from engine.store.redis_tier import RedisTier, redact
from engine.store.store import ChunkInfo, ChunkStore, CompileFn, StoreStats
from engine.store.titles import MAX_TITLE_CHARS, clean_title, title_of

__all__ = ["MAX_TITLE_CHARS", "ChunkFormat", "ChunkInfo", "ChunkKV", "ChunkRefused", "ChunkStore",
           "CompileFn", "Prefetcher", "RedisTier", "StoreStats", "clean_title", "redact",
           "title_of"]
