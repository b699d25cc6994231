"""One library per visitor over the one shared chunk store.

A visitor is a Gradio session: a browser page, or a gradio_client Client. It sees the shipped
examples plus the chunks it compiled itself; evict and clear touch only its own. What it
compiles is keyed under its own salt (a keyed hash of its session, `salt`), and so is what the
prefix_cache baseline keeps of its requests: the same text of one visitor is stored once, the
same text of two visitors twice, so that no count and no timing tells one visitor what another
compiled or asked. The examples are everybody's (no salt).

Making a session costs nothing, so a session holds nothing until it keeps something: a library
is remembered only while it holds chunks, a kept inspection or benchmark files (`hold`). At
most `max_sessions` are remembered, one client address holding at most its share of them; at a
cap the newcomer is refused, and nobody's library is dropped before its page closes
(`demo.unload`) or its idle time ends. Visitors' chunks are pinned in the store (its byte
budget never evicts them): together they may fill the budget less the examples, one visitor
(and one address) at most its share of it; past that a compile is refused, nobody evicted.
The variant copies compiled for a visitor's chunks are its own too: counted in its share,
pinned and released with their chunk (app/shares.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.clients import client_of
from app.limits import AppLimits
from app.shares import check_share, held_bytes, room_bytes
from engine import ChunkStore


@dataclass
class Library:
    """One visitor's state on the server."""

    session: str
    client: str = "local"  # the address it came from (app/clients.py)
    chunks: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> (title, tokens)
    last_seen: float = field(default_factory=time.monotonic)
    inspection: Any = None  # the last inspection (app.inspector.Inspection), for redraws
    inspection_bytes: int = 0
    files: Path | None = None  # this visitor's benchmark result files
    num_compiled: int = 0  # compile passes its own compiles ran

    @property
    def empty(self) -> bool:
        return not self.chunks and self.inspection is None and self.files is None


class Libraries:
    """The remembered libraries, the owners of every key, and the sessions with a model call
    queued or running, over one ChunkStore."""

    def __init__(self, store: ChunkStore, limits: AppLimits, shared: Iterable[str] = ()) -> None:
        self.store, self.limits = store, limits
        self.shared: set[str] = set(shared)  # the examples' keys: everybody's, never evicted here
        self._libraries: dict[str, Library] = {}
        self._owners: dict[str, set[str]] = {}  # key -> sessions holding it
        self._busy: dict[str, tuple[float, str]] = {}  # session -> (call queued at, client)
        self._secret = secrets.token_bytes(32)  # the salts' key: this process's own
        self._lock = threading.RLock()
        store.check_variant = self.check_variant  # a visitor's copies count in its share

    @property
    def share_bytes(self) -> int:
        """Bytes one visitor's own chunks may hold."""
        return self.limits.session_bytes(self.store.budget_bytes)

    @property
    def room_bytes(self) -> int:
        """Bytes all visitors' chunks together may hold: the store's budget less the
        examples'."""
        return room_bytes(self.store, self.shared)

    def salt(self, session: str) -> str:
        """The session's salt for chunk keys and prefix_cache: stable for the session, unlike
        any other session's, and not the session id (it is written beside stored chunks)."""
        return hmac.new(self._secret, str(session).encode(), hashlib.sha256).hexdigest()[:32]

    def get(self, session: str) -> Library:
        """The session's library, marked as seen now; for a session that holds nothing, an
        empty one that is remembered nowhere. Idle sessions are released here."""
        with self._lock:
            self._expire()
            library = self._libraries.get(session)
            if library is None:
                return Library(session, client_of(session))
            library.last_seen = time.monotonic()
            return library

    def hold(self, session: str) -> Library:
        """The session's library, remembered from now on. A newcomer is refused (ValueError)
        when as many libraries as allowed are held, or as many as its address may hold."""
        with self._lock:
            library = self.get(session)
            if session in self._libraries:
                return library
            held = sum(1 for lib in self._libraries.values() if lib.client == library.client)
            if len(self._libraries) >= self.limits.max_sessions:
                raise ValueError(f"the lab is full: {self.limits.max_sessions} visitors' "
                                 f"libraries are held now. {self._when}")
            if held >= self.limits.client_sessions:
                raise ValueError(f"your address already holds {held} libraries, its share of "
                                 f"this lab's {self.limits.max_sessions}: close other pages "
                                 f"of this app first. {self._when}")
            self._libraries[session] = library
            return library

    @property
    def _when(self) -> str:
        return (f"A library is released when its page closes or after "
                f"{self.limits.session_idle_s // 60} min idle: try again later.")

    @contextmanager
    def holding(self, session: str) -> Iterator[Library]:
        """`hold` for the length of a call; a library still empty at its end is forgotten."""
        library = self.hold(session)
        try:
            yield library
        finally:
            with self._lock:
                if library.empty and self._libraries.get(session) is library:
                    del self._libraries[session]

    def _expire(self) -> None:
        now, idle = time.monotonic(), self.limits.session_idle_s
        for session, (since, _) in list(self._busy.items()):
            if now - since >= idle:  # a call queued that long never ran
                del self._busy[session]
        for library in list(self._libraries.values()):
            if now - library.last_seen > idle and library.session not in self._busy:
                self.release(library.session)

    def sessions(self) -> list[str]:
        """The sessions whose libraries are remembered."""
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
        """Bytes of KV the session's own chunks and their variant copies take."""
        return self._bytes(lambda lib: lib.session == session)

    def _bytes(self, which: Callable[[Library], bool]) -> int:
        """Bytes of the distinct keys the libraries `which` selects hold, with their copies."""
        with self._lock:
            tokens = {key: n for lib in self._libraries.values() if which(lib)
                      for key, (_, n) in lib.chunks.items()}
            return held_bytes(self.store, tokens)

    def check_room(self, session: str, num_tokens: int, lead: str = "",
                   remedy: str = "compile a shorter text") -> None:
        """Refuse a compile of `num_tokens` more tokens past the session's share of the store,
        its address's share, or the room left for all visitors' chunks (app/shares.py)."""
        with self._lock:
            client = client_of(session)
            own = self.used_bytes(session)
            ours = self._bytes(lambda lib: lib.client == client and lib.session != session)
            check_share(self.limits, self.store, num_tokens * self.store.format.bytes_per_token,
                        own, own + ours, self._bytes(lambda lib: True), self.room_bytes,
                        self._when, lead, remedy)

    def check_variant(self, parent: str, variant: str, salt: str, num_bytes: int) -> None:
        """The store's question before it compiles a variant copy of chunk `parent`: refused
        (ValueError) past its owner's share, as a compile of as many tokens would be, or when
        no library holds a salted chunk any more; an unsalted one's copy (an example's, a
        benchmark's) is nobody's, unpinned, and the budget evicts it like any chunk."""
        with self._lock:
            owners = [] if parent in self.shared else sorted(self._owners.get(parent, ()))
            if salt and not owners:
                raise KeyError(f"chunk {parent!r} is not in your library: compile it first")
            for session in owners:
                title = self._libraries[session].chunks[parent][0]
                self.check_room(session, num_bytes // self.store.format.bytes_per_token,
                                f"its '{variant}' copy of your chunk '{title}' (compiled for "
                                "this algorithm, kept with the chunk) cannot be made: ",
                                "choose another algorithm")

    def add(self, session: str, chunks: Iterable[tuple[str, str, int]]) -> None:
        """Record (key, title, num_tokens) chunks the session compiled, pinned in the store."""
        with self._lock:
            library = self.hold(session)
            for key, title, num_tokens in chunks:
                library.chunks.setdefault(key, (title, num_tokens))
                self._owners.setdefault(key, set()).add(session)
                if key not in self.shared:
                    self.store.pin(key)

    def remove(self, session: str, keys: Iterable[str]) -> list[str]:
        """Drop keys from the session's library -> the titles dropped. A key no other
        session holds, and that is not an example, leaves the store with its variant copies
        (`ChunkStore.release`: its memory, its records, the shared tier)."""
        with self._lock:
            library = self._libraries.get(session)
            titles = self._drop(library, keys) if library is not None else []
            if library is not None and library.empty:
                del self._libraries[session]
            return titles

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
                    self.store.release(key)
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
            for library in list(self._libraries.values()):
                library.chunks.clear()
                if library.empty:
                    del self._libraries[library.session]
            for key in self._owners:
                self.store.pin(key, False)
            self._owners.clear()
            count = len(self.store)
            self.store.clear()
            return count

    # One queued or running model call per session (checked when a call is queued).

    def begin_call(self, session: str) -> None:
        """Mark a model call of the session as queued; refuse a second one while the first is
        queued or running. A mark older than the idle time is a call that never ran."""
        with self._lock:
            self._expire()
            if session in self._busy:
                raise ValueError("you already have a model call queued or running: wait for "
                                 "it to finish (one at a time per visitor)")
            self._busy[session] = (time.monotonic(), client_of(session))

    def end_call(self, session: str) -> None:
        with self._lock:
            self._busy.pop(session, None)
            if session in self._libraries:
                self._libraries[session].last_seen = time.monotonic()

    def busy_clients(self) -> set[str]:
        """Addresses with a model call queued or running (their uploads are kept for it)."""
        with self._lock:
            return {client for _, client in self._busy.values()}

    # The last inspection of each session, kept for redraws under one byte budget.

    def keep_inspection(self, session: str, inspection: Any, num_bytes: int) -> bool:
        """Keep the session's inspection in place of its last one if it fits: within the
        budget with everybody else's, within the session's and its address's share of it; no
        other visitor's is dropped for it -> whether it was kept."""
        with self._lock:
            library = self.get(session)
            library.inspection, library.inspection_bytes = None, 0
            client = library.client
            budget = self.limits.inspect_bytes
            total = sum(lib.inspection_bytes for lib in self._libraries.values())
            ours = sum(lib.inspection_bytes for lib in self._libraries.values()
                       if lib.client == client)
            fits = (num_bytes <= self.limits.session_bytes(budget) and total + num_bytes <= budget
                    and ours + num_bytes <= self.limits.client_bytes(budget))
            if not fits:
                if library.empty and session in self._libraries:
                    del self._libraries[session]
                return False
            try:
                library = self.hold(session)
            except ValueError:
                return False
            library.inspection, library.inspection_bytes = inspection, num_bytes
            return True


def holding(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A handler `fn(lab, session, ...)` that keeps something in the visitor's library, run
    with the library held: a newcomer is refused before any work when the lab is full."""
    @functools.wraps(fn)
    def run(lab: Any, session: str, *args: Any, **kwargs: Any) -> Any:
        with lab.libraries.holding(session):
            return fn(lab, session, *args, **kwargs)
    return run
