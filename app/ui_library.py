"""Library tab: layout and wiring. The handlers live in app/library.py."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import library, planning, stores
from app.controls import FreeDropdown, UploadedFiles
from app.errors import user_errors
from app.lab import Lab
from app.render import column_widths, md
from app.uploads import ACCEPTED_EXTENSIONS
from app.wiring import Guard, Step, bind, private, step


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
    confirm_evict: gr.Row
    confirm_evict_text: gr.Markdown
    yes_evict: gr.Button
    no_evict: gr.Button
    confirm_clear: gr.Row
    yes_clear: gr.Button
    no_clear: gr.Button
    store_name: gr.Textbox
    save: gr.Button
    load: gr.Button
    clear_confirm: gr.Textbox
    clear_store: gr.Button

    @property
    def model_buttons(self) -> list[gr.Button]:
        return [self.compile_files, self.compile_text]


def build(lab: Lab) -> LibraryTab:
    """Lay out the Library tab (inside an open gr.Tab). Tables and pickers start empty: the
    page's load event fills them with this visitor's library."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=300):
            files = UploadedFiles(label="Upload documents (.txt .md .pdf .json .jsonl)",
                                  file_count="multiple", elem_id="upload",
                                  file_types=list(ACCEPTED_EXTENSIONS), height=150)
            compile_files = gr.Button("Chunk & compile files", variant="primary",
                                      elem_id="compile-files")
            with gr.Accordion("…or paste text", open=False):
                paste_title = gr.Textbox(label="Title", placeholder="optional")
                paste_text = gr.Textbox(label="Text", lines=6, max_lines=14)
                compile_text = gr.Button("Chunk & compile text", elem_id="compile-text")
            status = gr.Markdown(label="Status", elem_classes="status", elem_id="library-status")
            with gr.Accordion("Compiled chunks (keys)", open=False):
                compiled = gr.JSON(label="Compiled chunks", show_label=False)
        with gr.Column(scale=5, min_width=300):
            summary = gr.Markdown(label="Library summary", elem_id="library-summary")
            table = gr.Dataframe(headers=library.TABLE_HEADERS, label="Your library",
                                 interactive=False, wrap=True, max_height=380,
                                 elem_id="library-table", elem_classes="scroll-table",
                                 column_widths=column_widths(library.TABLE_HEADERS, wide={
                                     "title": 220, "from": 90, "KV size": 100,
                                     "last used": 100, "key": 300}))
            with gr.Row(equal_height=True):
                evict_pick = FreeDropdown([], value=None, scale=4, label="Your chunk to evict",
                                          allow_custom_value=True, elem_id="evict-pick")
                evict = gr.Button("Evict", scale=1, size="md", elem_id="evict")
                refresh = gr.Button("Refresh", scale=1, size="md", elem_id="refresh")
                clear = gr.Button("Clear my library", variant="stop", scale=1, size="md",
                                  elem_id="clear")
            with gr.Row(visible=False, elem_id="confirm-evict") as confirm_evict:
                confirm_evict_text = gr.Markdown()
                yes_evict = gr.Button("Yes, evict it", variant="stop", size="sm")
                no_evict = gr.Button("Cancel", size="sm")
            with gr.Row(visible=False, elem_id="confirm-clear") as confirm_clear:
                gr.Markdown("Drop **every chunk of yours**? The examples stay.")
                yes_clear = gr.Button("Yes, clear my library", variant="stop", size="sm",
                                      elem_id="yes-clear")
                no_clear = gr.Button("Cancel", size="sm")
            gr.Markdown("Click a row to pick its chunk. You see the shipped examples and your "
                        "own uploads; nobody else sees yours, and they are released when you "
                        "close the page.", elem_classes="hint")
            with gr.Accordion("Operator: the whole store", open=False,
                              visible=lab.limits.operator):
                with gr.Row(equal_height=True):
                    store_name = gr.Textbox("default", label="Saved store name", scale=3)
                    save = gr.Button("Save store", scale=1, size="md")
                    load = gr.Button("Load store", scale=1, size="md")
                with gr.Row(equal_height=True):
                    clear_confirm = gr.Textbox(label="Type CLEAR to drop every visitor's chunks",
                                               scale=3)
                    clear_store = gr.Button("Clear the whole store", variant="stop", scale=1)
    return LibraryTab(files, compile_files, paste_title, paste_text, compile_text, status,
                      compiled, summary, table, evict_pick, evict, refresh, clear,
                      confirm_evict, confirm_evict_text, yes_evict, no_evict, confirm_clear,
                      yes_clear, no_clear, store_name, save, load, clear_confirm, clear_store)


def wire(lab: Lab, tab: LibraryTab, guard: Guard, picker: gr.Dropdown) -> list:
    """Attach the Library events -> the outputs of `library.refresh_view` (after every change
    to the store, other tabs refresh them too). `picker` is the Compose tab's chunk picker."""
    view = [tab.table, tab.summary, picker, tab.evict_pick]
    refreshed = step(lab, library.refresh_view, [], view)
    guard.chain(tab.compile_files.click,
                # An upload is estimated once parsed, by the handler, before it compiles.
                [step(lab, library.compile_files, [tab.files], [tab.status, tab.compiled],
                      "compile_files", model=True, estimate=planning.estimate_compile_files),
                 # the files were read and deleted: the next upload starts from an empty box
                 Step(lambda: None, [], [tab.files], options={"queue": False}), refreshed])
    guard.chain(tab.compile_text.click,
                [step(lab, library.compile_text, [tab.paste_text, tab.paste_title],
                      [tab.status, tab.compiled], "compile_text", model=True,
                      estimate=planning.estimate_compile_text), refreshed])
    refresh = tab.refresh.click(bind(lab, library.store_stats), None, [tab.table, tab.summary],
                                api_name="store_stats", concurrency_limit=None,
                                api_description="Your library: table and summary.")
    refreshed.attach(refresh.success)

    # Queued, so that a refusal shows as a message box wherever the page is scrolled to.
    step(lab, ask_evict, [tab.evict_pick], [tab.confirm_evict, tab.confirm_evict_text]).attach(
        tab.evict.click)
    private(tab.clear.click, lambda: gr.update(visible=True), [], [tab.confirm_clear])
    for row, no in ((tab.confirm_evict, tab.no_evict), (tab.confirm_clear, tab.no_clear)):
        private(no.click, lambda: gr.update(visible=False), [], [row])
    for button, fn, inputs, row, api_name in (
            (tab.yes_evict, library.evict, [tab.evict_pick], tab.confirm_evict, "evict"),
            (tab.yes_clear, library.clear, [], tab.confirm_clear, "clear"),
            (tab.save, stores.save_store, [tab.store_name], None, "save_store"),
            (tab.load, stores.load_store, [tab.store_name], None, "load_store"),
            (tab.clear_store, stores.clear_store, [tab.clear_confirm], None, "clear_store")):
        done = Step(bind(lab, fn), inputs, [tab.status], api_name).attach(button.click)
        if row is not None:
            private(button.click, lambda: gr.update(visible=False), [], [row])
        refreshed.attach(done.then)
    private(tab.table.select, _selected_key, [tab.table], [tab.evict_pick])
    return view


@user_errors
def ask_evict(lab: Lab, session: str, key: str | None) -> tuple:
    """Evict asks first: (the confirmation row, its question). With no chunk of the
    visitor's own chosen it says so (a message box, seen at any width) and asks nothing."""
    own = lab.libraries.get(session).chunks
    if not key or not isinstance(key, str):
        raise ValueError("choose one of your own chunks to evict first: pick it in the list, "
                         "or click its row in the table")
    if key not in own:
        raise ValueError("that chunk is not one of yours: only your own uploads can be evicted "
                         "(the examples are shared)")
    return gr.update(visible=True), f"Evict **{md(own[key][0])}** from your library?"


def _selected_key(table: object, event: gr.SelectData) -> str | dict:
    """Clicking a row of your own chunk picks it for eviction."""
    row = event.index[0] if isinstance(event.index, list | tuple) else None
    if row is None or table.iloc[row]["from"] != "you":
        return gr.skip()
    return table.iloc[row]["key"]
