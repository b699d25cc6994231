"""Full recompute: the accuracy reference every fidelity measure compares against."""

from __future__ import annotations

from engine.link.base import LinkAlgorithm


class FullRecompute(LinkAlgorithm):
    """Ignore the cache; compute every position of the prompt's token sequence."""

    name = "full_recompute"
    summary = "everything (no cache): the accuracy reference"
    paper = "the plain prefill"
    color = "#495057"
    reads_chunks = False
