"""Naive linking: position-independent caching without any correction."""

from __future__ import annotations

from engine.link.base import LinkAlgorithm


class Naive(LinkAlgorithm):
    """Reuse every cached token as compiled: one false attention sink per chunk remains."""

    name = "naive"
    summary = "nothing: one false *attention sink* per chunk remains"
    paper = "PIC without correction"
    color = "#e03131"
