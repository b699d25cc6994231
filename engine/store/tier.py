"""The shared tier: chunk bytes in a store every replica reads and writes, behind each
replica's own memory, so that replicas compile each text once. `SharedTier` is its contract;
`open_tier` picks the implementation a store URL names (Redis: redis_tier.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SCHEMES = ("redis://", "rediss://", "unix://")  # store URLs a tier exists for (all Redis's)


@dataclass(frozen=True)
class SharedStatus:
    """How the shared tier is doing, for the app's header and Library."""

    url: str  # without its password
    connected: bool
    used_bytes: int  # memory the tier uses: everything in it, chunks of every replica
    max_bytes: int  # its memory limit (0: none set)
    policy: str  # how it evicts when full
    warning: str  # "" when all is well; else one sentence for the operator and the visitors


class Subscription(Protocol):
    """The keys of chunks other replicas write, as they are announced."""

    def next_key(self, timeout_s: float) -> str | None:
        """The next announced key, or None after `timeout_s` without one; raises OSError
        when the tier goes away (subscribe again)."""

    def close(self) -> None: ...


class SharedTier(Protocol):
    """Chunk bytes under their keys, shared by every replica that names the same store.

    The rule: the tier is a cache, never the only copy, and it may drop any entry at any time.
    No method raises on a failure of the tier (down, unreachable, restarted, full) except
    `subscribe` and its subscription: each returns "nothing" (None, False, 0) and records a
    warning that `status` reports, and the caller carries on from its own memory. After a
    connection failure the tier is skipped for `retry_after_s`. A value is written whole or
    not at all, and every write is announced to the subscribers.
    """

    url: str  # where it is, without credentials (shown to the operator only)
    retry_after_s: float

    @property
    def available(self) -> bool:
        """False while skipped after a connection failure."""

    def addresses(self) -> tuple[str, ...]:
        """Every way its address is written (the URL, and as its client's errors write it),
        so that the app can keep it from visitors."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> bool:
        """Store and announce -> whether it was stored."""

    def delete(self, keys: list[str]) -> int:
        """Remove these keys' values (their owner let them go) -> how many were there."""

    def lock(self, key: str) -> str | None:
        """The compile lock of `key` -> a token to `unlock` with, "" when the tier fails (go
        ahead alone), None when another replica holds it (`wait` for its value)."""

    def unlock(self, key: str, token: str | None) -> None: ...

    def wait(self, key: str, timeout_s: float | None = None) -> bytes | None:
        """The value once the lock's holder has written it; None when the lock went without
        a value, on timeout, or on a failure."""

    def subscribe(self) -> Subscription: ...

    def num_listeners(self) -> int:
        """Replicas subscribed right now (0 on a failure)."""

    def status(self) -> SharedStatus: ...


def check_url(url: str) -> None:
    """A ValueError unless `url` is empty (a local store) or names a tier that exists."""
    if url and not url.startswith(SCHEMES):
        raise ValueError(f"store_url must start with one of {', '.join(SCHEMES)} (or be empty "
                         f"for a local store), got {url[:80]!r}")


def open_tier(url: str) -> SharedTier:
    """The shared tier a store URL names (a ValueError for a scheme no tier has)."""
    check_url(url)
    # Imported here: the Redis tier implements this module's contract (and imports it).
    from engine.store.redis_tier import RedisTier

    return RedisTier(url)
