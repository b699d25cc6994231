"""The chunk store: compiled chunks keyed by content, in this replica's memory under a byte
budget (least recently used first out), behind it a tier shared by replicas (`SharedTier`,
Redis), persisted as checked safetensors files. It keeps chunks and never makes them: the
compile step is a function it is given. Imports nothing of the runtime."""

from engine.store.chunk import ChunkFormat, ChunkKV
from engine.store.codec import ChunkRefused
from engine.store.prefetch import Prefetcher
from engine.store.stats import ChunkInfo, StoreStats
from engine.store.store import ChunkStore, CompileFn
from engine.store.tier import SharedStatus, SharedTier, Subscription, check_url, open_tier
from engine.store.titles import MAX_TITLE_CHARS, chunk_titles, clean_title, title_of

__all__ = ["MAX_TITLE_CHARS", "ChunkFormat", "ChunkInfo", "ChunkKV", "ChunkRefused",
           "ChunkStore", "CompileFn", "Prefetcher", "SharedStatus", "SharedTier", "StoreStats",
           "Subscription", "check_url", "chunk_titles", "clean_title", "open_tier", "title_of"]
