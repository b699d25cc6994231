"""The algorithm parameter controls, built once from the engine's config: their ranges are the
engine's limits and their defaults its defaults, never numbers of the UI's own."""

from __future__ import annotations

import gradio as gr

from engine import Engine


def recompute_k(engine: Engine, label: str = "legolink k: tokens recomputed at each chunk "
                "start") -> gr.Slider:
    return gr.Slider(0, engine.config.max_recompute_k, value=engine.config.recompute_k, step=1,
                     label=label)


def recompute_ratio(engine: Engine, label: str = "cacheblend ratio: share of cached tokens "
                    "recomputed") -> gr.Slider:
    return gr.Slider(0, 1, value=engine.config.recompute_ratio, step=0.05, label=label)


def max_new_tokens(engine: Engine, value: int = 32) -> gr.Slider:
    limit = engine.config.max_new_tokens
    return gr.Slider(1, limit, value=min(value, limit), step=1, label="max new tokens")
