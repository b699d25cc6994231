"""The Gradio app: header, four tabs, and how it is launched (queue, theme, CSS)."""

from __future__ import annotations

import html
from functools import partial
from typing import Any

import gradio as gr

from app import ui_bench, ui_compose, ui_library
from app.examples import ASSETS, Presets, load_presets
from app.library import LIMITS
from app.wiring import Guard
from engine import Engine

TITLE = "EPIC Lab"


def header(engine: Engine) -> str:
    """The header: what the app is, and the model, device and dtype it runs."""
    model = engine.model.model_id
    spec = engine.model.spec
    chips = [f"model: {model}", f"device: {engine.config.device}",
             f"dtype: {engine.config.dtype}",
             f"{spec.num_layers} layers · {spec.num_heads} heads · {spec.num_kv_heads} KV heads",
             f"store: {engine.store.stats().shared_status or 'this process only'}"]
    return (f"<div id='epic-header'><h1>{TITLE}</h1><p>Position-independent caching: compile "
            "documents into KV caches once, link them behind any prefix in any order, and race "
            "LegoLink (EPIC, ICML 2025) against the baselines.</p><div class='chips'>"
            + "".join(f"<span class='chip'>{html.escape(c)}</span>" for c in chips)
            + "</div></div>")


def store_note(engine: Engine) -> str:
    """A warning under the header while the shared chunk store fails ("" when all is well)."""
    warning = engine.store.warning
    return f"<div id='store-warning'>⚠️ {html.escape(warning)}</div>" if warning else ""


def build_ui(engine: Engine, presets: Presets | None = None) -> gr.Blocks:
    """The whole app over one shared engine. Launch it with `launch`."""
    presets = presets or load_presets()
    with gr.Blocks(title=TITLE) as demo:
        gr.HTML(header(engine))
        note = gr.HTML(store_note(engine))  # polled outside the model queue: never waits
        for event in (demo.load, gr.Timer(10).tick):
            event(partial(store_note, engine), outputs=note, queue=False, show_progress="hidden",
                  api_visibility="private")
        with gr.Tabs():
            with gr.Tab("Library", id="library"):
                library = ui_library.build(engine)
            with gr.Tab("Compose", id="compose"):
                compose = ui_compose.build_compose(engine, presets)
            with gr.Tab("Inspect", id="inspect"):
                inspect = ui_compose.build_inspect(engine, compose)
            with gr.Tab("Benchmark", id="benchmark"):
                bench = ui_bench.build(engine)
        guard = Guard([*library.model_buttons, compose.run, compose.example, inspect.run,
                       *bench.model_buttons])
        pickers = [library.evict_pick, compose.chunks]
        store_view = [library.table, library.summary]
        ui_library.wire(engine, library, guard, pickers)
        ui_compose.wire(engine, presets, compose, inspect, guard, store_view, pickers)
        ui_bench.wire(engine, bench, guard, store_view)
    return demo


def launch(demo: gr.Blocks, **kwargs: Any) -> gr.Blocks:
    """Queue model calls one at a time and launch; kwargs go to `Blocks.launch` (host and
    port default to GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, which Gradio reads itself)."""
    demo.queue(default_concurrency_limit=1)
    options: dict[str, Any] = {"max_file_size": LIMITS.max_file_bytes} | kwargs
    demo.launch(theme=gr.themes.Soft(primary_hue="emerald", secondary_hue="slate"),
                css_paths=[ASSETS / "style.css"], **options)
    return demo
