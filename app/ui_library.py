"""Library tab: layout and wiring. The handlers live in app/library.py."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from app import library
from app.uploads import ACCEPTED_EXTENSIONS
from app.wiring import Guard, describe, private
from engine import Engine


@dataclass
class LibraryTab:
    """The Library tab's components that events and other tabs use."""

    files: gr.File
    compile_files: gr.Button
    paste_title: gr.Textbox
    paste_text: gr.Textbox
    compile_text: gr.Button
    status: gr.Markdown
    compiled: gr.JSON
    summary: gr.Markdown
    table: gr.Dataframe
    evict_pick: gr.Dropdown
    evict: gr.Button
    refresh: gr.Button
    clear: gr.Button
    store_name: gr.Textbox
    save: gr.Button
    load: gr.Button

    @property
    def model_buttons(self) -> list[gr.Button]:
        return [self.compile_files, self.compile_text]


def build(engine: Engine) -> LibraryTab:
    """Lay out the Library tab (inside an open gr.Tab)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            files = gr.File(label="Upload documents", file_count="multiple", elem_id="upload",
                            file_types=list(ACCEPTED_EXTENSIONS), height=150)
            compile_files = gr.Button("Chunk & compile files", variant="primary")
            with gr.Accordion("…or paste text", open=False):
                paste_title = gr.Textbox(label="Title", placeholder="optional")
                paste_text = gr.Textbox(label="Text", lines=6, max_lines=14)
                compile_text = gr.Button("Chunk & compile text")
            status = gr.Markdown(label="Status", elem_classes="status", elem_id="library-status")
            with gr.Accordion("Compiled chunks (keys)", open=False):
                compiled = gr.JSON(label="Compiled chunks", show_label=False)
        with gr.Column(scale=5):
            summary = gr.Markdown(library.store_summary(engine), label="Store summary")
            table = gr.Dataframe(library.store_table(engine), label="Chunk store",
                                 interactive=False, wrap=False, max_height=380,
                                 column_widths=["30%", "24%", "8%", "10%", "8%", "8%", "12%"])
            with gr.Row(equal_height=True):
                evict_pick = gr.Dropdown(library.chunk_choices(engine), value=None, scale=4,
                                         label="Chunk to evict", show_label=False,
                                         container=False, allow_custom_value=True)
                evict = gr.Button("Evict", scale=1, size="md")
                refresh = gr.Button("Refresh", scale=1, size="md")
                clear = gr.Button("Clear all", variant="stop", scale=1, size="md")
            gr.Markdown("Click a row to pick its chunk. Saved stores live under the engine's "
                        "cache directory, by name.", elem_classes="hint")
            with gr.Row(equal_height=True):
                store_name = gr.Textbox("default", label="Saved store name", scale=4,
                                        show_label=False, container=False,
                                        placeholder="store name")
                save = gr.Button("Save store", scale=1, size="md")
                load = gr.Button("Load store", scale=1, size="md")
    return LibraryTab(files, compile_files, paste_title, paste_text, compile_text, status,
                      compiled, summary, table, evict_pick, evict, refresh, clear, store_name,
                      save, load)


def wire(engine: Engine, tab: LibraryTab, guard: Guard, pickers: list[gr.Dropdown]) -> None:
    """Attach the Library events. `pickers` are every chunk dropdown to refresh after a
    change to the store (this tab's evict picker and the Compose tab's chunk picker)."""
    view = [tab.table, tab.summary, *pickers]

    def refresh_view() -> tuple:
        choices = library.chunk_choices(engine)
        return (*library.store_stats(engine), *[gr.update(choices=choices) for _ in pickers])

    compiled = guard.start(tab.compile_files.click, partial(library.compile_files, engine),
                           [tab.files], [tab.status, tab.compiled], "compile_files")
    guard.release(compiled.then(refresh_view, None, view, api_visibility="private"))
    pasted = guard.start(tab.compile_text.click, partial(library.compile_text, engine),
                         [tab.paste_text, tab.paste_title], [tab.status, tab.compiled],
                         "compile_text")
    guard.release(pasted.then(refresh_view, None, view, api_visibility="private"))

    tab.refresh.click(partial(library.store_stats, engine), None, [tab.table, tab.summary],
                      api_name="store_stats", api_description=describe(library.store_stats),
                      concurrency_limit=None).then(
        refresh_view, None, view, api_visibility="private")
    for button, fn, inputs, api_name in (
            (tab.evict, library.evict, [tab.evict_pick], "evict"),
            (tab.clear, library.clear, [], "clear"),
            (tab.save, library.save_store, [tab.store_name], "save_store"),
            (tab.load, library.load_store, [tab.store_name], "load_store")):
        button.click(partial(fn, engine), inputs, [tab.status], api_name=api_name,
                     api_description=describe(fn), concurrency_limit=None).then(
            refresh_view, None, view, api_visibility="private")
    private(tab.table.select, _selected_key, [tab.table], [tab.evict_pick])


def _selected_key(table: object, event: gr.SelectData) -> str | dict:
    """Clicking a row of the store table picks that chunk for eviction."""
    row = event.index[0] if isinstance(event.index, list | tuple) else None
    if row is None:
        return gr.skip()
    return table.iloc[row]["key"]
