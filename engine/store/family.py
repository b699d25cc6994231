"""A chunk's family: the chunk as compiled plainly and its compile-variant copies.

The rule, defined here once: a variant copy (the same token ids compiled another way for an
algorithm that links them so: LegoLink-0's and APE's behind sink tokens) belongs to the plain
chunk of the same token ids and salt, its *parent*, and so to whoever holds that chunk. The
store keeps a copy while its parent is pinned, drops it with its parent (an eviction, a
release), counts its bytes with its parent (`ChunkStore.variant_bytes`) and, before compiling
it, asks the parent's owner whether it fits (`ChunkStore.check_variant`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# (parent key, variant name, salt, bytes the copy will take) -> None, or a ValueError (or
# KeyError) with the message that refuses the copy: nothing is compiled and nothing stored.
VariantCheck = Callable[[str, str, str, int], None]


class Families:
    """Which chunk each variant copy held in memory belongs to, and every variant name seen
    (a released chunk's copies are found by name, also those no longer in memory)."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}  # variant copy's key -> its parent's key
        self._children: dict[str, set[str]] = {}  # parent's key -> its copies' keys
        self.names: set[str] = set()  # every variant name a copy was held under

    def add(self, key: str, parent: str | None, variant: str) -> None:
        """Record a copy held in memory (`parent` None: a plain chunk, nothing to record)."""
        if parent is None:
            return
        self._parent[key] = parent
        self._children.setdefault(parent, set()).add(key)
        self.names.add(variant)

    def discard(self, key: str) -> None:
        """Forget a copy that left memory (a parent's own entry stays: its copies' do)."""
        parent = self._parent.pop(key, None)
        if parent is not None:
            children = self._children[parent]
            children.discard(key)
            if not children:
                del self._children[parent]

    def parent(self, key: str) -> str | None:
        """The parent of a copy held in memory; None for a plain chunk."""
        return self._parent.get(key)

    def children(self, key: str) -> tuple[str, ...]:
        """The keys of the copies of `key` held in memory."""
        return tuple(sorted(self._children.get(key, ())))

    def keys_of(self, token_ids: Sequence[int], salt: str,
                key_for: Callable[[Sequence[int], str, str], str]) -> list[str]:
        """The keys every variant copy of these token ids under `salt` has or would have."""
        return [key_for(token_ids, name, salt) for name in sorted(self.names)]
