"""A visitor's share of the chunk store, counted in one place.

What a visitor holds is its chunks and the compile-variant copies made for them (LegoLink-0's
and APE's sink-free compile): a copy belongs to the visitor and the chunk it was compiled for
(engine/store/family.py), is pinned with the chunk, goes with it, and counts here beside it.
A chunk the store evicted counts by its remembered tokens (it comes back when used); a copy
counts while it is held (it is made again, and checked again, when used). Every compile of a
visitor, plain or variant, is checked against three bounds before the model runs: its own
share, its address's share, and the room all visitors' chunks have (the budget less the
examples'). Past one it is refused with a message; nobody's chunks are evicted for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.limits import AppLimits
from app.render import size_text
from engine import ChunkStore


def held_bytes(store: ChunkStore, chunks: dict[str, int]) -> int:
    """Bytes of these chunks (key -> tokens) and of their variant copies the store holds."""
    return (sum(chunks.values()) * store.format.bytes_per_token
            + sum(store.variant_bytes(key) for key in chunks))


def room_bytes(store: ChunkStore, examples: Iterable[str]) -> int:
    """Bytes all visitors' chunks together may hold: the store's budget less the examples'."""
    tokens = 0
    for key in examples:
        evicted = store.evicted_token_ids(key)
        tokens += (store.peek(key).num_tokens if key in store
                   else len(evicted[1]) if evicted else 0)
    return store.budget_bytes - tokens * store.format.bytes_per_token


def check_share(limits: AppLimits, store: ChunkStore, needed: int, own: int, ours: int,
                everyone: int, room: int, when: str, lead: str = "",
                remedy: str = "compile a shorter text") -> None:
    """Refuse `needed` more bytes (ValueError) when the visitor's own (`own`), its address's
    (`ours`) or all visitors' bytes (`everyone`, against `room`) would pass their bound;
    `lead` opens the message, `remedy` ends the first two."""
    share = limits.session_bytes(store.budget_bytes)
    if own + needed > share:
        raise ValueError(
            f"{lead}your library would hold {size_text(own + needed)} of KV, over your share "
            f"of {size_text(share)} ({limits.session_share:.0%} of the store): evict some of "
            f"your chunks or {remedy}")
    address = limits.client_bytes(store.budget_bytes)
    if ours + needed > address:
        raise ValueError(f"{lead}the libraries of your address would hold "
                         f"{size_text(ours + needed)} of KV, over its share of "
                         f"{size_text(address)}: evict chunks in your other pages of this app, "
                         f"or {remedy}")
    if everyone + needed > room:
        raise ValueError(f"{lead}the chunk store has no room for {size_text(needed)} more now "
                         f"(nobody's chunks are evicted to make it). {when}")
