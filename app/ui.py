"""The Gradio app: header, five tabs, and how it is launched (queue, limits, theme, CSS).

Every page load shows the visitor's own library (fresh, not the start-up snapshot), and the
page's end releases it.
"""

from __future__ import annotations

import html
from functools import partial
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from app import (
    library,
    mcp_tools,
    start,
    ui_benchmark,
    ui_compose,
    ui_inspector,
    ui_library,
    ui_start,
)
from app.agents import AgentAddress, agent_session
from app.examples import ASSETS
from app.lab import Lab
from app.upload_guard import UploadGuard, Uploads
from app.wiring import Guard, bind, step

TITLE = "EPIC Lab"


def header(lab: Lab) -> str:
    """The header: what the app is, and the model, device and dtype it runs."""
    engine = lab.engine
    spec = engine.model.spec
    chips = [f"model: {engine.model.model_id}", f"device: {engine.config.device}",
             f"dtype: {engine.config.dtype}",
             f"{spec.num_layers} layers · {spec.num_heads} heads · {spec.num_kv_heads} KV heads",
             f"store: {lab.public(engine.store.stats().shared_status) or 'this process only'}"]
    return (f"<div id='epic-header'><h1>{TITLE}</h1><p>Position-independent caching: compile "
            "documents into KV caches once, link them behind any prefix in any order, and race "
            "LegoLink (<a href='https://arxiv.org/abs/2410.15332' target='_blank' "
            "rel='noopener'>EPIC, ICML 2025</a>) against the baselines.</p><div class='chips'>"
            + "".join(f"<span class='chip'>{html.escape(c)}</span>" for c in chips)
            + "</div></div>")


def store_note(lab: Lab) -> str:
    """A warning under the header while the shared chunk store fails ("" when all is well)."""
    warning = lab.public(lab.engine.store.warning)
    return f"<div id='store-warning'>⚠️ {html.escape(warning)}</div>" if warning else ""


def build_ui(lab: Lab, mcp: bool = False) -> gr.Blocks:
    """The whole app over one shared lab. Launch it with `launch`; with `mcp`, the agents'
    tools (app/mcp_tools.py), which `launch` then serves as an MCP server."""
    # Returned files (benchmark results) in Gradio's cache: swept every 5 min, kept at most
    # 15 min. Uploads are deleted sooner, by app/upload_guard.py (within a minute when no
    # compile uses them); compile_files deletes the files it read at once.
    with gr.Blocks(title=TITLE, delete_cache=(300, 900)) as demo:
        gr.HTML(header(lab))
        note = gr.HTML(store_note(lab))  # polled outside the model queue: never waits
        for event in (demo.load, gr.Timer(10).tick):
            event(partial(store_note, lab), outputs=note, queue=False, show_progress="hidden",
                  api_visibility="private")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Start", id="start"):
                start_tab = ui_start.build(lab)
            with gr.Tab("Library", id="library"):
                lib = ui_library.build(lab)
            with gr.Tab("Compose", id="compose"):
                compose = ui_compose.build(lab)
            with gr.Tab("Inspect", id="inspect"):
                inspect = ui_inspector.build(lab, compose)
            with gr.Tab("Benchmark", id="benchmark"):
                bench = ui_benchmark.build(lab)
        guard = Guard([*lib.model_buttons, *compose.model_buttons, inspect.run,
                       *bench.model_buttons, *start_tab.model_buttons])
        view = ui_library.wire(lab, lib, guard, compose.chunks)
        refreshed = step(lab, library.refresh_view, [], view)
        ui_compose.wire(lab, compose, guard, view, inspect.request,
                        [ui_inspector.inspect_step(lab, compose, inspect, None)], tabs)
        ui_inspector.wire(lab, compose, inspect, guard, refreshed)
        ui_benchmark.wire(lab, bench, guard, refreshed)
        guard.chain(start_tab.run.click,
                    [step(lab, start.run_story, [start_tab.question],
                          [start_tab.figure, start_tab.table, start_tab.summary], "story",
                          model=True, estimate=start.estimate_story),
                     refreshed])
        guard.chain(start_tab.inspect.click,
                    [step(lab, start.inspect_last, [start_tab.question],
                          [compose.prefix, compose.chunks, compose.question, inspect.algorithms,
                           tabs]),
                     ui_inspector.inspect_step(lab, compose, inspect, None), refreshed])
        # Fresh views on every page load; the page's end releases the visitor's library and
        # its place in the model's queue (Gradio drops a departed page's queued events).
        refreshed.attach(demo.load)
        demo.unload(bind(lab, leave))
        if mcp:
            mcp_tools.add_tools(lab)
    return demo


def leave(lab: Lab, session: str) -> None:
    """A page closed (or a client's heartbeat ended): release what it held."""
    lab.admission.leave(session)
    lab.libraries.release(session)


def launch(demo: gr.Blocks, lab: Lab, **kwargs: Any) -> gr.Blocks:
    """Queue model calls one at a time, bound what a visitor may leave behind, and launch;
    kwargs go to `Blocks.launch` (host and port default to GRADIO_SERVER_NAME /
    GRADIO_SERVER_PORT, which Gradio reads itself). `api_open=False` closes the direct
    routes (/gradio_api/run/<name>) to every queued event on every deployment (Gradio opens
    them wherever the app is not a Space): model calls and redraws are taken only through
    the queue, its validator and its lanes. An app built with the agents' tools is an MCP
    server too (/gradio_api/mcp/), offering those tools only."""
    demo.queue(default_concurrency_limit=1, max_size=lab.limits.queue_size, api_open=False)
    uploads = lab.uploads or Uploads(lab.limits, lab.libraries.busy_clients)
    options: dict[str, Any] = {
        # Every multipart POST (uploads) within its client address's allowance, before Gradio
        # writes a byte of it (app/upload_guard.py).
        # An agent's address travels with the MCP server's loopback call (app/agents.py).
        "app_kwargs": {"middleware": [
            Middleware(UploadGuard, uploads=uploads),
            Middleware(AgentAddress, behind_proxy=lab.limits.behind_proxy)]},
        "max_file_size": lab.upload_limits.max_file_bytes,
        # Gradio keeps, per session, a copy of every output's last value (an inspection's
        # figures are ~1.6 MB of JSON) and of every updated component, for this many sessions
        # (the least recently seen go first; its default is 10,000). Nothing here reads them
        # back: the dropdowns a session updates take any value and the handlers check it.
        "state_session_capacity": lab.limits.kept_outputs,
        "run_history": False,
        "theme": gr.themes.Soft(primary_hue="emerald", secondary_hue="slate"),
        "css_paths": [ASSETS / "style.css"],
        "mcp_server": any(fn.api_name in mcp_tools.TOOLS for fn in demo.fns.values()),
    } | kwargs
    block = not options.pop("prevent_thread_lock", False)
    demo.launch(prevent_thread_lock=True, **options)  # the server runs; then, before a call:
    lab.admission.live = partial(holds_event, demo)
    mcp_tools.restrict(demo)
    if block:
        demo.block_thread()
    return demo


def holds_event(demo: gr.Blocks, session: str) -> bool:
    """Whether Gradio's queue holds an event of the session, waiting or running (it drops a
    session's waiting events when its client closes the stream that would read them). An
    agent's events come from the MCP server's one loopback client: theirs is the session
    their secret header names (app/agents.py)."""
    queue = demo._queue
    waiting = (e for q in list(queue.event_queue_per_concurrency_id.values())
               for e in list(q.queue))
    running = (e for job in list(queue.active_jobs) if job for e in job)
    return any(_session(e) == session for e in (*waiting, *running))


def _session(event: Any) -> str:
    try:
        named = agent_session(getattr(event.request, "headers", None))
    except ValueError:  # never admitted
        named = None
    return named or event.session_hash

