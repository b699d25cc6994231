"""A linked prompt's layout: one token sequence made of prefix, chunk and suffix segments.

Global positions run 0..N-1 over the whole sequence. Every algorithm, full recompute included,
runs on exactly these token ids (engine/prompt.py makes them from a request). An algorithm
that reorders chunks reports the layout it used, in its order (`LinkResult.layout`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """A run of positions [start, start + len(token_ids)) in a linked prompt."""

    kind: str  # "prefix" | "chunk" | "suffix"
    start: int
    token_ids: tuple[int, ...]
    key: str | None = None  # the chunk's store key, for kind == "chunk"
    title: str = ""

    @property
    def end(self) -> int:
        return self.start + len(self.token_ids)


@dataclass(frozen=True)
class Layout:
    """One linked prompt: its token sequence and the segments that make it up."""

    token_ids: tuple[int, ...]
    segments: tuple[Segment, ...]

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def chunks(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == "chunk")

    def order_in(self, composed: Layout) -> tuple[int, ...] | None:
        """This layout's chunks as 1-based numbers of `composed`'s chunks, when both link one
        prompt (same prefix, same suffix, the same chunks in any order: an algorithm that
        reorders); None when they are different prompts."""
        ends = [(s.kind, s.token_ids) for s in (self.segments[0], self.segments[-1])]
        if ends != [(s.kind, s.token_ids) for s in (composed.segments[0], composed.segments[-1])]:
            return None
        free = {i: s.token_ids for i, s in enumerate(composed.chunks, 1)}
        order = []
        for seg in self.chunks:
            match = next((i for i, ids in free.items() if ids == seg.token_ids), None)
            if match is None:
                return None
            del free[match]
            order.append(match)
        return tuple(order) if not free else None

    def reordered_from(self, composed: Layout) -> bool:
        """Whether this layout links `composed`'s chunks in another order."""
        order = self.order_in(composed)
        return order is not None and order != tuple(range(1, len(order) + 1))
