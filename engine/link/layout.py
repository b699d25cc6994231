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
