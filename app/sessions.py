"""One library per visitor over the one shared chunk store.

A visitor is a Gradio session: a browser page, or a gradio_client Client. It sees the shipped
examples plus the chunks it compiled itself; evict and clear touch only its own. The store
keeps each text once (content keys), so two visitors who compile the same text share one
chunk, its bytes counted once in the store; it leaves the store when no visitor holds it and
it is not an example. A visitor's own chunks may take at most a fair share of the store's
budget. A session is released when it ends (the page closes: `demo.unload`), after an idle
time, or when more sessions than allowed are open (the longest idle goes first); its chunks,
its kept inspection and its files go with it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.limits import AppLimits
from app.render import size_text
from engine import ChunkStore


@dataclass
class Library:
    """One visitor's state on the server."""

    session: str
    chunks: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (title, tokens)
    last_seen: float = field(default_factory=time.monotonic)
    busy_since: float | None = None  # a model call queued or running
    inspection: Any = None  # the last inspection (app.inspector.Inspection), for redraws
    inspection_bytes: int = 0
    files: Path | None = None  # this visitor's benchmark result files


class Libraries:
    """Per-session key sets and the owners of every key, over one ChunkStore."""

    def __init__(self, store: ChunkStore, limits: AppLimits, shared: Iterable[str] = ()) -> None:
        self.store, self.limits = store, limits
        self.shared: set[str] = set(shared)  # the examples' keys: everybody's, never evicted here
        self._libraries: OrderedDict[str, Library] = OrderedDict()  # least recently seen first
        self._owners: dict[str, set[str]] = {}  # key -> sessions holding it
        self._lock = threading.RLock()

    @property
    def share_bytes(self) -> int:
        """Bytes one visitor's own chunks may hold."""
        return self.limits.session_bytes(self.store.budget_bytes)

    def get(self, session: str) -> Library:
        """The session's library (made on first use), marked as seen now. Sessions idle for
        too long, or beyond the number kept, are released here."""
        with self._lock:
            library = self._libraries.get(session)
            if library is None:
                library = self._libraries[session] = Library(session)
            library.last_seen = time.monotonic()
            self._libraries.move_to_end(session)
            self._expire()
            return library

    def _expire(self) -> None:
        now = time.monotonic()
        for library in list(self._libraries.values()):
            over = len(self._libraries) > self.limits.max_sessions
            idle = now - library.last_seen > self.limits.session_idle_s
            if (over or idle) and library.busy_since is None:
                self.release(library.session)

    def sessions(self) -> list[str]:
        with self._lock:
            return list(self._libraries)

    def visible(self, session: str) -> set[str]:
        """Keys the session may see and use: the examples and its own."""
        with self._lock:
            return self.shared | set(self.get(session).chunks)

    def check(self, session: str, keys: Iterable[str]) -> None:
        """Refuse keys that are not the session's to use, with the store's own wording for an
        unknown key: another visitor's chunk is as unknown as one never compiled."""
        allowed = self.visible(session)
        for key in keys:
            if key not in allowed:
                raise KeyError(f"chunk {key!r} is not in your library: compile it first")

    def used_bytes(self, session: str) -> int:
        """Bytes of KV the session's own chunks take (a chunk shared with others counts for
        each of them: it is the share of the store each one keeps alive)."""
        tokens = sum(n for _, n in self.get(session).chunks.values())
        return tokens * self.store.format.bytes_per_token

    def check_room(self, session: str, num_tokens: int) -> None:
        """Refuse a compile of `num_tokens` more tokens that would take the session past its
        share of the store."""
        needed = self.used_bytes(session) + num_tokens * self.store.format.bytes_per_token
        if needed > self.share_bytes:
            raise ValueError(
                f"your library would hold {size_text(needed)} of KV, over your share of "
                f"{size_text(self.share_bytes)} ({self.limits.session_share:.0%} of the store): "
                "evict some of your chunks or compile a shorter text")

    def add(self, session: str, chunks: Iterable[tuple[str, str, int]]) -> None:
        """Record (key, title, num_tokens) chunks the session compiled."""
        with self._lock:
            library = self.get(session)
            for key, title, num_tokens in chunks:
                library.chunks.setdefault(key, (title, num_tokens))
                self._owners.setdefault(key, set()).add(session)

    def remove(self, session: str, keys: Iterable[str]) -> list[str]:
        """Drop keys from the session's library -> the titles dropped. A key no other
        session holds, and that is not an example, leaves the store."""
        with self._lock:
            return self._drop(self.get(session), keys)

    def _drop(self, library: Library, keys: Iterable[str]) -> list[str]:
        titles = []
        for key in list(keys):
            if key not in library.chunks:
                continue
            titles.append(library.chunks.pop(key)[0])
            owners = self._owners.get(key, set())
            owners.discard(library.session)
            if not owners:
                self._owners.pop(key, None)
                if key not in self.shared:
                    try:
                        self.store.evict(key)
                    except KeyError:
                        pass  # the store's LRU evicted it already
        return titles

    def release(self, session: str) -> None:
        """Forget a session: its chunks (as `remove`), its inspection and its files."""
        with self._lock:
            library = self._libraries.pop(session, None)
            if library is None:
                return
            self._drop(library, list(library.chunks))
        if library.files is not None:
            shutil.rmtree(library.files, ignore_errors=True)

    def clear_all(self) -> int:
        """Empty every library and the store (the operator's store-wide clear) -> chunks
        dropped from the store. The examples' keys stay shared: they recompile on use."""
        with self._lock:
            for library in self._libraries.values():
                library.chunks.clear()
            self._owners.clear()
            count = len(self.store)
            self.store.clear()
            return count

    # One queued or running model call per session (checked when a call is queued).

    def begin_call(self, session: str) -> None:
        """Mark a model call of the session as queued; refuse a second one while the first is
        queued or running. A mark older than the idle time is a call that never ran."""
        with self._lock:
            library = self.get(session)
            now = time.monotonic()
            if library.busy_since is not None and \
                    now - library.busy_since < self.limits.session_idle_s:
                raise ValueError("you already have a model call queued or running: wait for "
                                 "it to finish (one at a time per visitor)")
            library.busy_since = now

    def end_call(self, session: str) -> None:
        with self._lock:
            library = self._libraries.get(session)
            if library is not None:
                library.busy_since = None

    # The last inspection of each session, kept for redraws under one byte budget.

    def keep_inspection(self, session: str, inspection: Any, num_bytes: int) -> None:
        """Keep the session's inspection; drop the least recently seen sessions' ones while
        all of them together take more than the budget."""
        with self._lock:
            library = self.get(session)
            library.inspection, library.inspection_bytes = inspection, num_bytes
            total = sum(lib.inspection_bytes for lib in self._libraries.values())
            for other in self._libraries.values():
                if total <= self.limits.inspect_bytes:
                    break
                if other.inspection is not None and other is not library:
                    total -= other.inspection_bytes
                    other.inspection, other.inspection_bytes = None, 0
            if total > self.limits.inspect_bytes:  # this one alone is over the budget
                library.inspection, library.inspection_bytes = None, 0
