"""ChunkStore: compiled chunk KV keyed by content, under a byte budget, shared and persisted.

Two tiers: this replica's memory in front (least recently used chunk evicted first, under a
byte budget) and, when configured, a tier shared by every replica behind it (a `SharedTier`,
tier.py; Redis): a compiled chunk is written there, a local miss reads it from there, and two
replicas asked for the same text compile it once. Files on disk and shared values share one
byte format (codec.py), checked like a fresh compile whenever it is read.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from engine.store.chunk import ChunkFormat, ChunkKV
from engine.store.evicted import Evicted
from engine.store.family import Families, VariantCheck
from engine.store.files import load_chunks, write_chunks
from engine.store.shared import SharedChunks
from engine.store.stats import ChunkInfo, StoreStats
from engine.store.tier import SharedTier
from engine.store.titles import clean_title

_KEY = re.compile(r"[0-9a-f]{32}")
CompileFn = Callable[[tuple[int, ...]], tuple[torch.Tensor, torch.Tensor]]


class ChunkStore:
    """Thread-safe store of compiled chunks with least-recently-used eviction.

    It keeps chunks; it does not make them: `get_or_compile` takes the compile step as a
    function, so the store never runs the model. `max_chunk_tokens` bounds what it accepts
    from a compile, a file or another replica alike; `shared` is the shared tier, if any.
    """

    def __init__(self, fmt: ChunkFormat, budget_bytes: int, max_chunk_tokens: int | None = None,
                 shared: SharedTier | None = None) -> None:
        self.format, self.budget_bytes = fmt, budget_bytes
        self.max_chunk_tokens = max_chunk_tokens or max(1, budget_bytes // fmt.bytes_per_token)
        self.shared = None if shared is None else SharedChunks(shared, fmt, self.max_chunk_tokens,
                                                               budget_bytes)
        self._chunks: OrderedDict[str, ChunkKV] = OrderedDict()  # LRU order: oldest first
        self._num_bytes = 0
        self._lock = threading.RLock()
        # One compile at a time, apart from `_lock`: stats stay readable while one runs.
        self._compile_lock = threading.Lock()
        self._evicted = Evicted()  # what a request needs to compile an evicted chunk again
        self._pinned: set[str] = set()  # keys the byte budget never evicts (see `pin`)
        self._families = Families()  # each variant copy's parent chunk (family.py)
        self.check_variant: VariantCheck | None = None  # may refuse a copy (family.py)
        self.num_compiled = 0

    def key_for(self, token_ids: list[int] | tuple[int, ...], variant: str = "",
                salt: str = "") -> str:
        """The content key (`chunk_key`): of the token ids, compile variant and salt."""
        return self.format.key_for(token_ids, variant, salt)

    def get_or_compile(self, token_ids: list[int] | tuple[int, ...], title: str,
                       compile_fn: CompileFn, variant: str = "", salt: str = "") -> str:
        """The key of these token ids compiled as `variant` (what `compile_fn` -> (k, v)
        computes; "" the default) under `salt` (one per owner), compiling them only when they
        are neither stored here nor in the shared tier: the same text sent twice with one
        salt, even at once, even to two replicas, is computed once per variant."""
        token_ids = tuple(token_ids)
        self.format.check(token_ids, self.max_chunk_tokens, self.budget_bytes)
        key, title = self.key_for(token_ids, variant, salt), clean_title(title)
        with self._compile_lock:
            with self._lock:
                if key in self._chunks:
                    self._chunks.move_to_end(key)
                    return key
            if variant and self.check_variant is not None:  # not under _lock: it may lock
                self.check_variant(self.key_for(token_ids, "", salt), variant, salt,
                                   len(token_ids) * self.format.bytes_per_token)
            chunk = self._shared_or_compiled(key, token_ids, title, compile_fn, variant, salt)
            with self._lock:
                self._insert(chunk)
        return key

    def _shared_or_compiled(self, key: str, token_ids: tuple[int, ...], title: str,
                            compile_fn: CompileFn, variant: str, salt: str) -> ChunkKV:
        """The chunk from the shared tier, else compiled here (once across replicas)."""
        def compiled() -> ChunkKV:
            k, v = compile_fn(token_ids)
            with self._lock:
                self.num_compiled += 1
            return ChunkKV(key, title, token_ids, k, v, variant=variant, salt=salt)

        if self.shared is None:
            return compiled()
        self.shared.write_unshared(self._local)
        chunk = self.shared.read_or_compile(key, compiled)
        chunk.title = title or chunk.title  # the name this replica's user gave it
        return chunk

    def prefetch(self, key: str) -> bool:
        """Read `key` from the shared tier into memory if it is not here and fits the free
        budget (a prefetch never evicts) -> whether it was brought in."""
        if self.shared is None or not _KEY.fullmatch(key):
            return False
        # Under the compile lock: a key this replica is compiling (and just announced) is
        # in memory by the time the lock is free, and is not read back.
        with self._compile_lock:
            with self._lock:
                if key in self._chunks or self._num_bytes >= self.budget_bytes:
                    return False
            chunk = self.shared.read(key)
            return isinstance(chunk, ChunkKV) and self._add_if_room(chunk) is True

    def _add_if_room(self, chunk: ChunkKV) -> bool | None:
        """Insert a chunk read from elsewhere if it fits the free budget (never evicting) ->
        True; None when it is here already, False when it does not fit."""
        with self._lock:
            if chunk.key in self._chunks:
                return None
            if self._num_bytes + chunk.num_bytes > self.budget_bytes:
                return False
            self._insert(chunk)
            return True

    def _local(self, key: str) -> ChunkKV | None:
        with self._lock:
            return self._chunks.get(key)

    def fetch(self, key: str, compile_fn: CompileFn | None = None, variant: str = "") -> ChunkKV:
        """The chunk of `key` for a request: from memory, else recompiled from the token ids
        it had when evicted (with `compile_fn`, which compiles `variant`: only a chunk of that
        variant is recompiled with it), else from the shared tier; KeyError with a message
        when none has it. A chunk brought back counts as used, not as a hit."""
        return self.fetch_many([key], compile_fn, variant)[0]

    def fetch_many(self, keys: Iterable[str], compile_fn: CompileFn | None = None,
                   variant: str = "") -> list[ChunkKV]:
        """`fetch` for each key, in order; those only the shared tier has are read from it in
        parallel."""
        keys, why = list(keys), {}
        if self.shared is not None:
            with self._lock:  # evicted ones to recompile: get_or_compile asks the tier
                wanted = [k for k in dict.fromkeys(keys) if _KEY.fullmatch(k) and k not in
                          self._chunks and (compile_fn is None or
                                            getattr(self._evicted.get(k), "variant", 0) != variant)]
            if wanted:
                with self._compile_lock:
                    self.shared.write_unshared(self._local)
                    for key, got in zip(wanted, self.shared.read_many(wanted), strict=True):
                        with self._lock:
                            if isinstance(got, str):
                                why[key] = got
                            elif key not in self._chunks:
                                self._insert(got)
        return [self._fetch_one(key, compile_fn, variant, why.get(key, "")) for key in keys]

    def _fetch_one(self, key: str, compile_fn: CompileFn | None, variant: str,
                   why: str) -> ChunkKV:
        with self._lock:
            if key in self._chunks:
                return self._chunks[key]
            evicted = self._evicted.get(key)
        if evicted is not None and compile_fn is not None and evicted.variant == variant:
            self.get_or_compile(evicted.token_ids, evicted.title, compile_fn, variant, evicted.salt)
        with self._lock:
            if key in self._chunks:
                return self._chunks[key]
            raise self._missing(key, why)

    def _insert(self, chunk: ChunkKV) -> None:
        old = self._chunks.pop(chunk.key, None)
        self._num_bytes += chunk.num_bytes - (old.num_bytes if old is not None else 0)
        self._chunks[chunk.key] = chunk
        self._evicted.pop(chunk.key)
        parent = self.key_for(chunk.token_ids, "", chunk.salt) if chunk.variant else None
        self._families.add(chunk.key, parent, chunk.variant)  # a plain chunk has no parent
        while self._num_bytes > self.budget_bytes:  # the oldest that no owner pins goes
            oldest = next((k for k in self._chunks if k not in (chunk.key, parent)
                           and not self._is_pinned(k)), None)
            if oldest is None:
                break
            self._drop(oldest)

    def _is_pinned(self, key: str) -> bool:
        return key in self._pinned or self._families.parent(key) in self._pinned

    def _drop(self, key: str, remember: bool = True) -> None:
        """Drop a chunk and its variant copies from memory (`remember`: for a recompile)."""
        for child in self._families.children(key):
            self._drop(child, remember)
        chunk = self._chunks.pop(key)
        self._num_bytes -= chunk.num_bytes
        self._families.discard(key)
        if remember:
            self._evicted.add(chunk)

    def evicted_token_ids(self, key: str) -> tuple[str, tuple[int, ...]] | None:
        """(title, token ids) of a chunk evicted earlier, to recompile it; None if unknown."""
        with self._lock:
            return None if (evicted := self._evicted.get(key)) is None else evicted[:2]

    def pin(self, key: str, pinned: bool = True) -> None:
        """Keep `key` and its variant copies out of the budget's eviction while an owner holds it
        (False: let go); `evict` and `clear` still drop them; the pin stays for a recompile."""
        with self._lock:
            (self._pinned.add if pinned else self._pinned.discard)(key)

    def peek(self, key: str) -> ChunkKV:
        """The chunk for a key in this replica's memory, with no side effect (no hit, no LRU
        move)."""
        with self._lock:
            chunk = self._chunks.get(key)
            if chunk is None:
                raise self._missing(key)
            return chunk

    def _missing(self, key: str, why: str = "") -> KeyError:
        where = "was evicted from the store" if key in self._evicted else "is not in the store"
        return KeyError(f"chunk {key!r} {where}{' ' + why if why else ''}: compile it again")

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
        """Drop a chunk and its variant copies from this replica's memory (the shared tier
        keeps its copies)."""
        with self._lock:
            if key not in self._chunks:
                raise KeyError(f"chunk {key!r} is not in the store")
            self._drop(key)

    def variant_bytes(self, key: str) -> int:
        """Bytes the variant copies of chunk `key` take in this replica's memory."""
        with self._lock:
            return sum(self._chunks[k].num_bytes for k in self._families.children(key))

    def release(self, key: str) -> None:
        """Forget a chunk whose owner let it go, and every variant copy of it: out of this
        replica's memory, its record of evictions, its pins and, for a salted key (its
        owner's alone: no one else may read it), the shared tier."""
        with self._lock:
            record = self._chunks.get(key) or self._evicted.get(key)
            keys = [key] + ([] if record is None else  # also copies held nowhere now
                            self._families.keys_of(record.token_ids, record.salt, self.key_for))
            for k in keys:
                if k in self._chunks:  # its copies go with it
                    self._drop(k, remember=False)
                self._evicted.pop(k)
                self._pinned.discard(k)
        if record is not None and record.salt and self.shared is not None:
            self.shared.tier.delete(keys)

    def clear(self) -> None:
        """Drop every chunk from this replica's memory (the shared tier keeps its copies)."""
        with self._lock:
            for key in list(self._chunks):
                if key in self._chunks:  # not gone with its parent already
                    self._drop(key)

    @property
    def tier(self) -> SharedTier | None:
        """The shared tier behind this replica's memory (None for a local store)."""
        return self.shared.tier if self.shared is not None else None

    def tokens(self, key: str) -> tuple[str, tuple[int, ...]]:
        """(title, token ids) of a chunk held here or evicted from here, with no side effect:
        a prompt's size, known before any model work. KeyError with a message otherwise."""
        with self._lock:
            record = self._chunks.get(key) or self._evicted.get(key)
            if record is None:
                raise self._missing(key)
            return record.title, record.token_ids

    @property
    def warning(self) -> str:
        """What is wrong with the shared tier ("" when all is well, or with no shared tier):
        cheap enough to poll for the app's header."""
        return self.shared.tier.status().warning if self.shared is not None else ""

    def stats(self) -> StoreStats:
        shared = self.shared.tier.status() if self.shared is not None else None  # not under _lock
        with self._lock:
            infos = tuple(ChunkInfo(c.key, c.title, c.num_tokens, c.num_bytes, str(c.k.device),
                                    c.hits, c.last_used, c.variant) for c in self._chunks.values())
            evicted = self._evicted.recent(64)
            local = (len(infos), self._num_bytes, self.budget_bytes, self.format.bytes_per_token,
                     self.num_compiled, infos, evicted)
        return StoreStats(*local) if shared is None else StoreStats(
            *local, f"shared through {shared.url}", shared.used_bytes, shared.max_bytes,
            self.shared.num_fetched, self.shared.num_refused, shared.warning)

    def save(self, path: str | Path, keys: Iterable[str] | None = None) -> int:
        """Write every chunk (or those of `keys` still stored) under `path`, a directory that
        then holds exactly those chunks, one safetensors file each (codec.py) -> how many."""
        wanted = None if keys is None else set(keys)
        with self._lock:
            chunks = [c for c in self._chunks.values() if wanted is None or c.key in wanted]
        write_chunks(Path(path), chunks, self.format)
        return len(chunks)

    def load(self, path: str | Path) -> tuple[int, list[str]]:
        """Load every valid chunk file under `path` -> (number loaded, warnings naming each
        file refused). Files are checked like fresh compiles; loading evicts nothing and stops,
        with a warning, at the first chunk that does not fit the store's free budget."""
        return load_chunks(Path(path), self.format, self.max_chunk_tokens, self._add_if_room)
