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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.model import Model

log = logging.getLogger(__name__)
FORMAT = "epic-lab-chunk-v1"
MAX_EVICTED_REMEMBERED = 4096


@dataclass(frozen=True)
class ChunkFormat:
    """What every chunk of one store shares: the model that compiled it and its KV layout."""

    model_id: str
    dtype: torch.dtype
    device: torch.device
    num_layers: int
    num_kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, model: Model) -> ChunkFormat:
        s = model.spec
        return cls(model.model_id, model.dtype, model.device, s.num_layers, s.num_kv_heads,
                   s.head_dim)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def bytes_per_token(self) -> int:
        """Exact K+V bytes one token occupies over all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype.itemsize

    def shape(self, num_tokens: int) -> tuple[int, int, int, int]:
        return (self.num_layers, self.num_kv_heads, num_tokens, self.head_dim)


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
    """Thread-safe store of compiled chunks with least-recently-used eviction.

    It keeps chunks; it does not make them: `get_or_compile` takes the compile step as a
    function, so the store never runs the model.
    """

    def __init__(self, fmt: ChunkFormat, budget_bytes: int) -> None:
        self.format, self.budget_bytes = fmt, budget_bytes
        self._chunks: OrderedDict[str, ChunkKV] = OrderedDict()  # LRU order: oldest first
        self._lock = threading.RLock()
        # One compile at a time, apart from `_lock`: stats stay readable while one runs.
        self._compile_lock = threading.Lock()
        # Evicted chunks' token ids (cheap) so a request naming one can recompile it.
        self._evicted: OrderedDict[str, tuple[str, tuple[int, ...]]] = OrderedDict()
        self.num_compiled = 0

    def key_for(self, token_ids: list[int] | tuple[int, ...]) -> str:
        """The content key: a hash of (model id, dtype, token ids), with no prefix chain."""
        ids = ",".join(map(str, token_ids))
        f = self.format
        return hashlib.sha256(f"{f.model_id}|{f.dtype_name}|{ids}".encode()).hexdigest()[:32]

    def get_or_compile(self, token_ids: list[int] | tuple[int, ...], title: str,
                       compile_fn: Callable[[tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]],
                       ) -> str:
        """The key of these token ids, compiling them with `compile_fn` -> (k, v) only when
        they are not stored yet: the same text sent twice, even at once, is computed once."""
        token_ids = tuple(token_ids)
        if not token_ids:
            raise ValueError("cannot compile an empty chunk")
        num_bytes = len(token_ids) * self.format.bytes_per_token
        if num_bytes > self.budget_bytes:
            raise ValueError(f"chunk needs {num_bytes} bytes of KV, over the store budget of "
                             f"{self.budget_bytes} bytes")
        key = self.key_for(token_ids)
        with self._compile_lock:
            with self._lock:
                if key in self._chunks:
                    self._chunks.move_to_end(key)
                    return key
            k, v = compile_fn(token_ids)
            with self._lock:
                self.num_compiled += 1
                self._insert(ChunkKV(key, title, token_ids, k, v))
        return key

    def _insert(self, chunk: ChunkKV) -> None:
        self._chunks[chunk.key] = chunk
        self._evicted.pop(chunk.key, None)
        total = sum(c.num_bytes for c in self._chunks.values())
        while total > self.budget_bytes:
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
                              self.budget_bytes, self.format.bytes_per_token,
                              self.num_compiled, infos,
                              tuple((k, t) for k, (t, _) in list(self._evicted.items())[-64:]))

    # Persistence: one safetensors file per chunk, written to a temporary name and renamed, so
    # a save killed half-way leaves every earlier file whole; a checksum catches corruption.

    def save(self, path: str | Path, keys: Iterable[str] | None = None) -> int:
        """Write every chunk (or those of `keys` still stored) under `path`, a directory that
        then holds exactly those chunks; -> number of chunks written."""
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        wanted = None if keys is None else set(keys)
        with self._lock:
            chunks = [c for c in self._chunks.values() if wanted is None or c.key in wanted]
        for chunk in chunks:
            target = directory / f"{chunk.key}.safetensors"
            tensors = {"k": chunk.k.contiguous().cpu(), "v": chunk.v.contiguous().cpu(),
                       "token_ids": torch.tensor(chunk.token_ids, dtype=torch.int64)}
            meta = {"format": FORMAT, "key": chunk.key, "title": chunk.title,
                    "model_id": self.format.model_id, "dtype": self.format.dtype_name,
                    "sha256": _checksum(tensors)}
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
        fmt = self.format
        if (meta.get("model_id"), meta.get("dtype")) != (fmt.model_id, fmt.dtype_name):
            raise ValueError(f"compiled for another model ({meta.get('model_id')}, "
                             f"{meta.get('dtype')})")
        if meta.get("sha256") != _checksum(tensors):
            raise ValueError("checksum mismatch (corrupted file)")
        token_ids = tuple(tensors["token_ids"].tolist())
        if self.key_for(token_ids) != meta.get("key"):
            raise ValueError("key does not match its token ids")
        shape = fmt.shape(len(token_ids))
        if tuple(tensors["k"].shape) != shape or tuple(tensors["v"].shape) != shape:
            raise ValueError(f"K/V shape {tuple(tensors['k'].shape)} does not match {shape}")
        to = {"device": fmt.device, "dtype": fmt.dtype}
        return ChunkKV(meta["key"], meta.get("title", ""), token_ids,
                       tensors["k"].to(**to), tensors["v"].to(**to))


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

