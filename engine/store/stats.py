"""What a chunk store reports: its chunks, bytes, budget, evictions and its shared tier."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkInfo:
    key: str
    title: str
    num_tokens: int
    num_bytes: int
    device: str
    hits: int
    last_used: float
    variant: str = ""  # "" for a chunk as compiled plainly; else a copy of one (family.py)


@dataclass(frozen=True)
class StoreStats:
    num_chunks: int
    num_bytes: int
    budget_bytes: int
    bytes_per_token: int
    num_compiled: int  # forward passes run by compile (a deduplicated compile runs none)
    chunks: tuple[ChunkInfo, ...]  # least recently used first
    evicted: tuple[tuple[str, str], ...]  # (key, title) of recent evictions, newest last
    shared_status: str = ""  # "" for a local-only store; else where chunks are shared
    shared_bytes: int = 0  # memory the shared tier uses (every replica's chunks)
    shared_budget_bytes: int = 0  # its memory limit (0: none set)
    num_fetched: int = 0  # chunks read from the shared tier instead of compiled
    num_refused: int = 0  # shared entries refused (corrupt, another model, out of limits)
    warning: str = ""  # "" when all is well; shown in the app's header and Library
