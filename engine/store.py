"""ChunkStore: compiled chunk KV keyed by content, under a byte budget, persisted as safetensors.

A chunk is compiled on its own at positions 0..T-1. Its key hashes (model id, dtype,
token ids) and nothing else — no prefix chain — which is what makes the cache
position-independent: the same text is stored once, whatever surrounds it later.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.config import EngineConfig
from engine.model import Model

log = logging.getLogger(__name__)
FORMAT = "epic-lab-chunk-v1"
MAX_EVICTED_REMEMBERED = 4096


@dataclass
class ChunkKV:
    """One compiled chunk.

    # k, v: [num_layers, num_kv_heads, T, head_dim]; k before RoPE, compiled at positions 0..T-1
    """

    key: str
    title: str
    token_ids: tuple[int, ...]
    k: torch.Tensor
    v: torch.Tensor
    hits: int = 0
    last_used: float = field(default_factory=time.time)

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_bytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()


@dataclass(frozen=True)
class ChunkInfo:
    key: str
    title: str
    num_tokens: int
    num_bytes: int
    device: str
    hits: int
    last_used: float


@dataclass(frozen=True)
class StoreStats:
    num_chunks: int
    num_bytes: int
    budget_bytes: int
    bytes_per_token: int
    num_compiled: int  # forward passes run by compile (a deduplicated compile runs none)
    chunks: tuple[ChunkInfo, ...]  # least recently used first
    evicted: tuple[tuple[str, str], ...]  # (key, title) of recent evictions, newest last


class ChunkStore:
    """Thread-safe store of compiled chunks with least-recently-used eviction."""

    def __init__(self, model: Model, config: EngineConfig) -> None:
        self.model, self.config = model, config
        self._chunks: OrderedDict[str, ChunkKV] = OrderedDict()  # LRU order: oldest first
        self._lock = threading.RLock()
        # Evicted chunks' token ids (cheap) so a request naming one can recompile it.
        self._evicted: OrderedDict[str, tuple[str, tuple[int, ...]]] = OrderedDict()
        self.num_compiled = 0

    def key_for(self, token_ids: list[int] | tuple[int, ...]) -> str:
        ids = ",".join(map(str, token_ids))
        return hashlib.sha256(f"{self.model.model_id}|{ids}".encode()).hexdigest()[:32]

    def compile(self, token_ids: list[int], title: str = "") -> str:
        """Compile token ids at positions 0..T-1 (or find them already compiled) -> key."""
        num_tokens = len(token_ids)
        if num_tokens == 0:
            raise ValueError("cannot compile an empty chunk")
        limit = min(self.config.max_context_tokens, self.model.spec.max_positions)
        if num_tokens > limit:
            raise ValueError(f"chunk has {num_tokens} tokens, over the limit of {limit}")
        num_bytes = num_tokens * self.model.bytes_per_token
        if num_bytes > self.config.store_budget_bytes:
            raise ValueError(f"chunk needs {num_bytes} bytes of KV, over the store budget of "
                             f"{self.config.store_budget_bytes} bytes")
        key = self.key_for(token_ids)
        with self._lock:  # one compile at a time: the same text sent twice is computed once
            if key in self._chunks:
                self._chunks.move_to_end(key)
                return key
            k, v = self._prefill(token_ids)
            self.num_compiled += 1
            self._insert(ChunkKV(key, title, tuple(token_ids), k, v))
        return key

    @torch.inference_mode()
    def _prefill(self, token_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        model, n = self.model, len(token_ids)
        s = model.spec
        kv = model.new_kv(n)
        kv.num_keys = n
        k_pre = torch.empty((s.num_layers, s.num_kv_heads, n, s.head_dim),
                            dtype=model.dtype, device=model.device)
        ids = torch.tensor(token_ids, device=model.device)
        model.forward(model.embed(ids), torch.arange(n, device=model.device), kv, k_pre_out=k_pre)
        return k_pre, kv.v

    def _insert(self, chunk: ChunkKV) -> None:
        self._chunks[chunk.key] = chunk
        self._evicted.pop(chunk.key, None)
        total = sum(c.num_bytes for c in self._chunks.values())
        while total > self.config.store_budget_bytes:
            old = next(iter(self._chunks.values()))
            if old.key == chunk.key:
                break
            total -= old.num_bytes
            del self._chunks[old.key]
            self._remember_evicted(old)

    def _remember_evicted(self, chunk: ChunkKV) -> None:
        self._evicted[chunk.key] = (chunk.title, chunk.token_ids)
        self._evicted.move_to_end(chunk.key)
        while len(self._evicted) > MAX_EVICTED_REMEMBERED:
            self._evicted.popitem(last=False)

    def evicted_token_ids(self, key: str) -> tuple[str, tuple[int, ...]] | None:
        """(title, token ids) of a chunk evicted earlier, to recompile it; None if unknown."""
        with self._lock:
            return self._evicted.get(key)

    def peek(self, key: str) -> ChunkKV:
        """The chunk for a key, with no side effect (no hit, no LRU move)."""
        with self._lock:
            chunk = self._chunks.get(key)
            if chunk is None:
                evicted = key in self._evicted
                why = "was evicted from the store" if evicted else "is not in the store"
                raise KeyError(f"chunk {key!r} {why}: compile it again")
            return chunk

    def get(self, key: str, hit: bool = True) -> ChunkKV:
        """The chunk for a key, marked most recently used and (if `hit`) counted as a hit."""
        with self._lock:
            chunk = self.peek(key)
            chunk.hits += int(hit)
            chunk.last_used = time.time()
            self._chunks.move_to_end(key)
            return chunk

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._chunks

    def __len__(self) -> int:
        return len(self._chunks)

    def evict(self, key: str) -> None:
        with self._lock:
            chunk = self._chunks.pop(key, None)
            if chunk is None:
                raise KeyError(f"chunk {key!r} is not in the store")
            self._remember_evicted(chunk)

    def clear(self) -> None:
        with self._lock:
            for chunk in self._chunks.values():
                self._remember_evicted(chunk)
            self._chunks.clear()

    def stats(self) -> StoreStats:
        with self._lock:
            infos = tuple(ChunkInfo(c.key, c.title, c.num_tokens, c.num_bytes, str(c.k.device),
                                    c.hits, c.last_used) for c in self._chunks.values())
            return StoreStats(len(infos), sum(i.num_bytes for i in infos),
                              self.config.store_budget_bytes, self.model.bytes_per_token,
                              self.num_compiled, infos,
                              tuple((k, t) for k, (t, _) in list(self._evicted.items())[-64:]))

    # Persistence: one safetensors file per chunk, written to a temporary name and renamed, so
    # a save killed half-way leaves every earlier file whole; a checksum catches corruption.

    def save(self, path: str | Path) -> int:
        """Write every chunk under `path` (a directory); -> number of chunks written."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            chunks = list(self._chunks.values())
        for chunk in chunks:
            target = directory / f"{chunk.key}.safetensors"
            tensors = {"k": chunk.k.contiguous().cpu(), "v": chunk.v.contiguous().cpu(),
                       "token_ids": torch.tensor(chunk.token_ids, dtype=torch.int64)}
            meta = {"format": FORMAT, "key": chunk.key, "title": chunk.title,
                    "model_id": self.model.model_id, "sha256": _checksum(tensors)}
            tmp = directory / f".{chunk.key}.tmp"
            save_file(tensors, str(tmp), metadata=meta)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        keep = {f"{c.key}.safetensors" for c in chunks}
        for stale in directory.glob("*.safetensors"):
            if stale.name not in keep:
                stale.unlink()
        return len(chunks)

    def load(self, path: str | Path) -> tuple[int, list[str]]:
        """Load every valid chunk file under `path` -> (number loaded, warnings for skipped)."""
        loaded, warnings = 0, []
        for file in sorted(Path(path).glob("*.safetensors")):
            try:
                chunk = self._read(file)
            except Exception as e:  # a corrupt file must never stop the others from loading
                warnings.append(f"skipped {file.name}: {e}")
                continue
            with self._lock:
                if chunk.key not in self._chunks:
                    self._insert(chunk)
                    loaded += 1
        for w in warnings:
            log.warning(w)
        return loaded, warnings

    def _read(self, file: Path) -> ChunkKV:
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in ("k", "v", "token_ids")}
        if meta.get("format") != FORMAT:
            raise ValueError("not an EPIC Lab chunk file")
        if meta.get("model_id") != self.model.model_id:
            raise ValueError(f"compiled for another model ({meta.get('model_id')})")
        if meta.get("sha256") != _checksum(tensors):
            raise ValueError("checksum mismatch (corrupted file)")
        token_ids = tuple(tensors["token_ids"].tolist())
        if self.key_for(token_ids) != meta.get("key"):
            raise ValueError("key does not match its token ids")
        s = self.model.spec
        shape = (s.num_layers, s.num_kv_heads, len(token_ids), s.head_dim)
        if tuple(tensors["k"].shape) != shape or tuple(tensors["v"].shape) != shape:
            raise ValueError(f"K/V shape {tuple(tensors['k'].shape)} does not match {shape}")
        to = {"device": self.model.device, "dtype": self.model.dtype}
        return ChunkKV(meta["key"], meta.get("title", ""), token_ids,
                       tensors["k"].to(**to), tensors["v"].to(**to))


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

