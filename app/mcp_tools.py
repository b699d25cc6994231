"""The lab as MCP tools for agents (Gradio's MCP server, /gradio_api/mcp/): compile text, list
my library, run a comparison (verdicts + table as JSON), inspect's summary (sink mass per chunk
start).

Gradio 6.31's MCP server calls a queued endpoint through a `gradio_client` Client of its own
over loopback (`client.submit`, the agent's headers forwarded): the call joins the app's one
queue like any API call, so Gradio runs the endpoint's validator on joining and its handler in
its concurrency lane. (A queue=False endpoint it would call in-process, past the queue and its
validator.) So every tool is queued, and each tool that runs the model takes the page's and the
API's path: `bind` and `validator` (app/wiring.py) over the same estimates and request checks
(app/planning.py, app/budget.py), in the model's lane: admitted by app/admission.py when it
joins (text and estimate within the bounds, one call per visitor, the queue's cap) and run
only then. The visitor is the library the agent's `X-EPIC-Visitor` secret names
(app/agents.py): its own chunks and salt, as a page's session has.

Only these four are tools: `restrict` drops every other endpoint (the operator's actions, the
figure-drawing ones) from the server's table after launch, so they are neither listed nor
callable through MCP.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import gradio as gr
from gradio.context import get_blocks_context

from app import compose, library
from app.admission import EstimateFn
from app.agents import TOOLS
from app.errors import user_errors
from app.inspector import INSPECT_TOKENS, MAX_SINK_TOKENS, Inspection, summary
from app.lab import Lab
from app.planning import estimate_compile_text, plan_runs
from app.wiring import MODEL, bind, validator
from engine import NAIVE, REFERENCE, parameters, whole_number

__all__ = ["TOOLS", "add_tools", "enabled", "restrict"]

COMPARED = (REFERENCE, NAIVE, "legolink")  # epic_compare's algorithms when none are named
INSPECTED = (NAIVE, "legolink")  # and epic_inspect_summary's (full recompute runs anyway)


def enabled(env: dict[str, str]) -> bool:
    """Whether the app serves the tools: unless EPIC_MCP=0, when the `mcp` package is there."""
    return env.get("EPIC_MCP", "1") != "0" and find_spec("mcp") is not None


def _json(value: dict) -> str:
    """A tool's answer: one JSON object as text (what an agent reads)."""
    return json.dumps(value, ensure_ascii=False)


def _plain(markdown: str) -> str:
    return markdown.replace("**", "")


def _ratio() -> float:
    return next(p.default for p in parameters() if p.name == "ratio")


def epic_compile_text(lab: Lab, session: str, text: str, title: str = "") -> str:
    """Compile a document into your library: its text is split into chunks and each chunk's KV
    cache is computed once. Call this before epic_compare or epic_inspect_summary and pass them
    the returned chunk keys.

    Args:
        text: the document's full text (plain text or Markdown).
        title: a short title for the document; empty takes the text's first words.

    Returns:
        JSON {"status": one line, "chunks": [{"title", "key", "tokens"}]} in document order.
    """
    status, chunks = library.compile_text(lab, session, text, title)
    return _json({"status": _plain(status), "chunks": chunks})


def epic_list_library(lab: Lab, session: str) -> str:
    """List the chunks you may use: the ones you compiled, then the shipped examples. Pass
    their keys to epic_compare or epic_inspect_summary.

    Returns:
        JSON {"chunks": [{"title", "key", "tokens", "own"}]}.
    """
    return _json({"chunks": [{"title": title, "key": key, "tokens": tokens, "own": own}
                             for key, title, tokens, own in library._entries(lab, session)]})


def epic_compare(lab: Lab, session: str, question: str, chunk_keys: list[str],
                 prefix: str = "", algorithms: list[str] | None = None, recompute_k: int = 16,
                 max_new_tokens: int = 16) -> str:
    """Answer a question over chunks linked behind a prefix, once per algorithm, and compare
    each answer with full recompute's (the exact reference). Read "verdicts" first: one
    sentence per algorithm with its speed-up over full recompute, whether its first token
    matches, and its first-token KL against naive linking's.

    Args:
        question: the question asked after the chunks.
        chunk_keys: chunk keys from epic_compile_text or epic_list_library, in prompt order.
        prefix: the system prompt before the chunks (never cached).
        algorithms: some of full_recompute, prefix_cache, naive, cacheblend, legolink, ...
        recompute_k: tokens LegoLink recomputes at the start of each chunk (0 to 1024).
        max_new_tokens: answer tokens generated per algorithm.

    Returns:
        JSON {"verdicts": [one sentence per algorithm], "results": [per algorithm: text,
        first_token_match, answer_match, same_tokens, first_token_kl, ttft_ms, token counts],
        "prompt_tokens", "compiled_during_run", "chunks"}.
    """
    *_, outputs = compose.run_compare(lab, session, prefix, chunk_keys, question,
                                      list(algorithms or COMPARED), recompute_k, _ratio(),
                                      max_new_tokens)
    report = dict(outputs[-1])
    report["results"] = [{k: v for k, v in row.items() if k != "mask"}
                         for row in report["results"]]
    return _json({"verdicts": report.pop("verdicts"), **report})


def estimate_compare(lab: Lab, session: str, question: Any, chunk_keys: Any, prefix: Any = "",
                     algorithms: Any = None, recompute_k: Any = 16,
                     max_new_tokens: Any = 16) -> Any:
    """What epic_compare with these inputs will cost (the page's plan and checks)."""
    return plan_runs(lab, session, prefix, chunk_keys, question, list(algorithms or COMPARED),
                     {"k": recompute_k}, max_new_tokens).estimate


@user_errors
def epic_inspect_summary(lab: Lab, session: str, question: str, chunk_keys: list[str],
                         prefix: str = "", algorithms: list[str] | None = None,
                         recompute_k: int = 16, sink_tokens: int = 4) -> str:
    """Measure false attention sinks: the attention the answer pays to the first tokens of
    each chunk, per algorithm and under full recompute, averaged over layers and heads. Naive
    linking puts extra attention on every chunk start not at position 0; LegoLink should
    remove most of that excess. Use two or more chunks.

    Args:
        question: the question asked after the chunks.
        chunk_keys: chunk keys from epic_compile_text or epic_list_library, in prompt order.
        prefix: the system prompt before the chunks.
        algorithms: the algorithms to inspect; empty: naive and legolink.
        recompute_k: tokens LegoLink recomputes at the start of each chunk (0 to 1024).
        sink_tokens: how many first tokens of each chunk count as its start (1 to 32).

    Returns:
        JSON {"summary": one paragraph, "chunks": [{"title", "key", "start"}], "sink_tokens",
        "sink_mass": {algorithm: [attention mass per chunk start]}} (full_recompute included).
    """
    k = whole_number(sink_tokens, "sink_tokens", 1, MAX_SINK_TOKENS)
    chosen = list(algorithms or INSPECTED)
    plan = plan_runs(lab, session, prefix, chunk_keys, question, chosen, {"k": recompute_k},
                     INSPECT_TOKENS, inspect=True, ensure=True)
    with lab.estimator.timed(lab.admission.within_budget(plan.estimate)):
        results = [lab.engine.inspect_request(request) for request in plan.requests]
    reference, titles = results[0], lab.titles(session)
    runs = dict(zip(plan.requests, results, strict=True))
    drawn = tuple(request for request, r in runs.items()
                  if r.run.algorithm != reference.run.algorithm or REFERENCE in chosen)
    text = summary(Inspection(runs, plan.requests[0], drawn, []), k, None, None)
    return _json({
        "summary": _plain(text.split("  \n")[0]),
        "chunks": [{"title": titles.get(seg.key, seg.title), "key": seg.key, "start": seg.start}
                   for seg in reference.run.layout.chunks],
        "sink_tokens": k,
        "sink_mass": {r.run.algorithm: [round(m, 4) for m in r.sink_mass(k)]
                      for r in results}})


def estimate_inspect(lab: Lab, session: str, question: Any, chunk_keys: Any, prefix: Any = "",
                     algorithms: Any = None, recompute_k: Any = 16, sink_tokens: Any = 4) -> Any:
    """What epic_inspect_summary with these inputs will cost (the Inspect tab's plan)."""
    return plan_runs(lab, session, prefix, chunk_keys, question, list(algorithms or INSPECTED),
                     {"k": recompute_k}, INSPECT_TOKENS, inspect=True).estimate


@dataclass(frozen=True)
class Tool:  # one of app/agents.py's TOOLS, the only endpoints an MCP call may run
    """One tool: its handler `fn(lab, session, ...)` (name, typed inputs and docstring are the
    tool's), and, for one that runs the model, its estimate (same inputs)."""

    fn: Callable[..., str]
    model: bool
    estimate: EstimateFn | None = None


ALL = (Tool(epic_compile_text, True, estimate_compile_text), Tool(epic_list_library, False),
       Tool(epic_compare, True, estimate_compare),
       Tool(epic_inspect_summary, True, estimate_inspect))


def _typed(wrapper: Callable[..., Any], fn: Callable[..., Any]) -> Callable[..., Any]:
    """`gr.api` derives an endpoint's (and a tool's) schema from type hints: the handler's
    input hints (resolved, not strings), `request`, and a str result."""
    hints = typing.get_type_hints(fn)
    names = list(wrapper.__signature__.parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {n: hints.get(n, gr.Request) for n in names} | {"return": str}
    wrapper.__signature__ = wrapper.__signature__.replace(  # type: ignore[attr-defined]
        return_annotation=str)
    return wrapper


def add_tools(lab: Lab) -> None:
    """Register the tools as queued endpoints of the open gr.Blocks (API name = tool name);
    a model tool in the model's lane, with the admission validator the page's steps have."""
    blocks = get_blocks_context()
    for tool in ALL:
        handler = _typed(bind(lab, tool.fn, model=tool.model), tool.fn)
        if not tool.model:  # a library read: any number at once, like the page's refresh
            gr.api(handler, api_name=tool.fn.__name__, concurrency_limit=None)
            continue
        dependency = gr.api(handler, api_name=tool.fn.__name__, concurrency_id=MODEL,
                            concurrency_limit=1)
        # gr.api takes no validator: set it as a listener's `validator=` would.
        blocks.fns[dependency["id"]].validator = validator(lab, tool.fn, tool.estimate)


def restrict(demo: gr.Blocks) -> None:
    """After launch: the MCP server lists and calls the four tools only (another endpoint's
    name is refused as an unknown tool)."""
    server = getattr(demo, "mcp_server_obj", None)
    if server is not None:
        # By endpoint: on a Space, Gradio prefixes the tools' names with the Space's.
        server.tool_to_endpoint = {name: endpoint for name, endpoint
                                   in server.tool_to_endpoint.items()
                                   if endpoint.lstrip("/") in TOOLS}
