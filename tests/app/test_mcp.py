"""The lab as an MCP server, driven over loopback by the `mcp` package's client (streamable
HTTP): initialize, list the tools, compile, list, compare, read the verdicts, inspect; the
admission the page and the API have (over the bound, one call per visitor, a full queue);
two agents' libraries kept apart; the operator's endpoints never offered. Tiny model."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from app import mcp_tools
from app.agents import HEADER, TOOLS, AgentAddress, agent_session
from app.lab import Lab
from app.limits import AppLimits
from tests.app.conftest import DOC_A, DOC_B, free_port, make_engine

pytest.importorskip("mcp")
pytestmark = pytest.mark.slow

ONE, TWO = "agent-one-secret-0001", "agent-two-secret-0002"


@pytest.fixture(scope="module")
def served(tiny_engine_config, tiny_model, examples_cache, tmp_path_factory):
    """(lab, MCP url, demo): the app with the tools, and the operator's endpoints on."""
    from app.ui import build_ui, launch

    engine = make_engine(tiny_engine_config, tiny_model, examples_cache,
                         tmp_path_factory.mktemp("mcp") / "cache")
    lab = Lab.open(engine, AppLimits(operator=True))
    demo = build_ui(lab, mcp=True)
    port = free_port()
    launch(demo, lab, prevent_thread_lock=True, server_name="127.0.0.1", server_port=port,
           quiet=True)
    try:
        yield lab, f"http://127.0.0.1:{port}/gradio_api/mcp/", demo
    finally:
        demo.close()


def run_async(coroutine):
    """asyncio.run in a thread of its own: the browser tests' session-wide Playwright (its sync
    API) keeps an event loop running in this thread, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@asynccontextmanager
async def agent(url: str, secret: str | None):
    """One initialized MCP session -> (session, initialize result)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    headers = {HEADER: secret} if secret else {}
    async with streamablehttp_client(url, headers=headers) as (read, write, _), \
            ClientSession(read, write) as session:
        yield session, await session.initialize()


async def calls(url: str, secret: str | None, *named: tuple[str, dict]) -> list:
    async with agent(url, secret) as (session, _):
        return [await session.call_tool(name, args) for name, args in named]


def run(url: str, secret: str | None, *named: tuple[str, dict]) -> list:
    return run_async(calls(url, secret, *named))


def payload(result) -> dict:
    assert not result.isError, result.content
    return json.loads(result.content[0].text)


def refusal(result) -> str:
    assert result.isError, f"refused, not answered: {result.content}"
    return result.content[0].text


def compare(keys: list[str], **more) -> tuple[str, dict]:
    return ("epic_compare", {"question": "Where is the head office?", "chunk_keys": keys,
                             "prefix": "Be brief.", "max_new_tokens": 2, **more})


def test_an_agent_compiles_compares_and_reads_the_verdicts(served):
    lab, url, _ = served

    async def listed():
        async with agent(url, ONE) as (session, init):
            return init, (await session.list_tools()).tools

    init, tools = run_async(listed())
    assert init.serverInfo.name == "EPIC Lab"
    assert [t.fn.__name__ for t in mcp_tools.ALL] == list(TOOLS)
    assert sorted(t.name for t in tools) == sorted(TOOLS), "the four tools, no other endpoint"
    described = {t.name: t for t in tools}
    assert "verdicts" in described["epic_compare"].description
    props = described["epic_compare"].inputSchema["properties"]
    assert {"question", "chunk_keys", "prefix", "algorithms", "recompute_k"} <= set(props)
    assert "in prompt order" in props["chunk_keys"]["description"], "Args: reach the schema"
    assert props["chunk_keys"]["type"] == "array"
    assert "1 to 32" in described["epic_inspect_summary"].inputSchema["properties"][
        "sink_tokens"]["description"]

    compiled, = run(url, ONE, ("epic_compile_text", {"text": DOC_A, "title": "alder"}))
    status, chunks = payload(compiled)["status"], payload(compiled)["chunks"]
    assert status.startswith("Compiled 1 document(s) into"), status
    keys = [c["key"] for c in chunks]
    session = agent_session({HEADER: ONE})
    assert set(keys) <= set(lab.libraries.get(session).chunks), "filed in the agent's library"
    assert lab.libraries.get(session).client == "127.0.0.1", "the agent's own address"

    listing, compared, inspected = run(
        url, ONE, ("epic_list_library", {}),
        compare(keys, algorithms=["full_recompute", "naive", "legolink"]),
        ("epic_inspect_summary", {"question": "Who?", "chunk_keys": [keys[0], *keys],
                                  "sink_tokens": 2}))
    own = [c for c in payload(listing)["chunks"] if c["own"]]
    assert [c["key"] for c in own] == keys and own[0]["title"] == "alder"
    assert any(not c["own"] for c in payload(listing)["chunks"]), "the examples are listed"
    report = payload(compared)
    labels = [r["algorithm"] for r in report["results"]]
    assert labels == ["full_recompute", "naive", "legolink-16"]
    assert [v.split(":")[0] for v in report["verdicts"]] == labels, "one verdict per row"
    assert "mask" not in report["results"][0] and report["prompt_tokens"] > 0
    assert report["results"][0]["first_token_match"] is True, "the reference matches itself"
    sinks = payload(inspected)
    assert set(sinks["sink_mass"]) == {"full_recompute", "naive", "legolink-16"}
    assert [c["key"] for c in sinks["chunks"]] == [keys[0], *keys]
    assert all(len(m) == len(keys) + 1 for m in sinks["sink_mass"].values())
    assert sinks["chunks"][0]["start"] < sinks["chunks"][1]["start"] and sinks["sink_tokens"] == 2
    assert sinks["summary"].startswith("Mean attention on the first 2 tokens"), sinks["summary"]


def test_bad_input_is_refused_with_its_reason(served, monkeypatch):
    lab, url, _ = served
    example = next(iter(lab.example_titles))
    empty, unknown, bad_k = run(
        url, ONE, ("epic_compile_text", {"text": "   ", "title": "x"}),
        compare(["0" * 32]), compare([example], recompute_k=5000))
    assert "the text is empty" in refusal(empty)
    assert f"chunk '{'0' * 32}' is not in your library: compile it first" in refusal(unknown)
    assert "recompute_k must be an integer in [0, 1024], got 5000" in refusal(bad_k)
    # Over the bound per call: refused when it joins, with its estimate, before it runs.
    monkeypatch.setattr(lab.admission, "limits", replace(lab.limits, max_call_s=1e-6))
    runs_before = lab.engine.store.stats().num_compiled
    over, = run(url, ONE, compare([example]))
    assert "this call would take about" in refusal(over)
    assert "over this app's limit of" in refusal(over) and "choose fewer algorithms" in (
        refusal(over))
    assert lab.engine.store.stats().num_compiled == runs_before
    assert len(lab.admission) == 0, "a refused call holds no place"
    # No secret, or a short one: refused, never filed under the loopback client's session.
    anonymous, = run(url, None, ("epic_list_library", {}))
    assert HEADER in refusal(anonymous)
    weak, = run(url, "short", ("epic_list_library", {}))
    assert "must hold 16 to 256 characters, got 5" in refusal(weak)


def test_agents_are_kept_apart_and_operator_actions_absent(served, monkeypatch):
    lab, url, demo = served
    mine, = run(url, TWO, ("epic_compile_text", {"text": DOC_B, "title": "birch"}))
    key = payload(mine)["chunks"][0]["key"]
    listing, refused, cleared, same = run(
        url, "agent-three-secret-03", ("epic_list_library", {}), compare([key]),
        ("clear_store", {"confirm": "CLEAR"}),
        ("epic_compile_text", {"text": DOC_B, "title": "birch"}))
    assert payload(same)["chunks"][0]["key"] != key, "the same text under each agent's salt"
    assert key not in {c["key"] for c in payload(listing)["chunks"]}, "another agent's chunk"
    assert not any(c["own"] for c in payload(listing)["chunks"])
    assert "is not in your library" in refusal(refused)
    assert "Unknown tool" in refusal(cleared)
    assert key in lab.engine.store, "the operator's clear never ran"
    for name in ("clear", "evict", "save_store", "load_store", "run_compare", "store_stats"):
        assert "Unknown tool" in refusal(run(url, TWO, (name, {}))[0]), name
    # Were Gradio's MCP server to offer every endpoint, an MCP call of one is still refused.
    server = demo.mcp_server_obj
    monkeypatch.setattr(server, "tool_to_endpoint", server.get_tool_to_endpoint())
    cleared, stats = run(url, TWO, ("clear_store", {"confirm": "CLEAR"}), ("store_stats", {}))
    assert "clear_store is not a tool of this app" in refusal(cleared)
    assert "store_stats is not a tool of this app" in refusal(stats)
    assert key in lab.engine.store, "the operator's clear never ran"
    with pytest.raises(ValueError, match="run_compare is not a tool"):
        agent_session({"x-gradio-user": "mcp", HEADER: TWO}, "run_compare")
    assert agent_session({HEADER: TWO}, "run_compare") == agent_session({HEADER: TWO}), (
        "a client that is not Gradio's MCP names its library the same way, on any endpoint")


def test_one_model_call_per_agent_and_the_queue_cap(served, monkeypatch):
    """The first call waits inside the engine (its lock held); a second call of the same
    agent is refused, and another agent's too while the queue (cap 1 here) is full."""
    lab, url, _ = served
    monkeypatch.setattr(lab.admission, "grace_s", 0.2)  # the place must stay as Gradio's
    session = agent_session({HEADER: ONE})
    example = next(iter(lab.example_titles))

    async def scenario():
        async with agent(url, ONE) as (first, _), agent(url, ONE) as (again, _), \
                agent(url, TWO) as (other, _):
            lab.engine._lock.acquire()
            try:
                held = asyncio.create_task(first.call_tool(
                    "epic_compile_text", {"text": DOC_A + " Held.", "title": "held"}))
                deadline = time.monotonic() + 60
                while not lab.admission.holds(session) and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert lab.admission.holds(session), "the first call was admitted"
                # Past the grace, seen twice: a place Gradio does not show as held would go.
                for _ in range(2):
                    assert len(lab.admission) == 1
                    await asyncio.sleep(1.2)
                # Refused at once; admitted, it would wait for the engine (hence the bound).
                twice = await asyncio.wait_for(again.call_tool(*compare([example])), 60)
                monkeypatch.setattr(lab.admission, "limits", replace(lab.limits, queue_size=1))
                full = await asyncio.wait_for(other.call_tool(*compare([example])), 60)
            finally:
                lab.engine._lock.release()
            return await asyncio.wait_for(held, 120), twice, full

    held, twice, full = run_async(scenario())
    assert payload(held)["chunks"], "the held call ran once the engine was free"
    assert "you already have a model call queued or running" in refusal(twice)
    assert "the model's queue is full (1 calls queued or running" in refusal(full)
    assert len(lab.admission) == 0 and not lab.admission.holds(session)


@pytest.mark.parametrize(("behind_proxy", "peer", "forwarded", "expected"), [
    (False, "198.51.100.9", "203.0.113.7", "198.51.100.9"),  # a claimed address is dropped
    (False, "198.51.100.9", None, "198.51.100.9"),
    (True, "10.0.0.2", "203.0.113.7, 198.51.100.9", "198.51.100.9"),  # the proxy's entry
])
def test_the_loopback_call_carries_the_agents_address(behind_proxy, peer, forwarded, expected):
    """The MCP server's loopback call comes from 127.0.0.1, whose X-Forwarded-For uvicorn
    trusts: the MCP request's own client address must be the one it forwards."""
    seen = []

    async def app(scope, receive, send):
        seen.append([v for k, v in scope["headers"] if k == b"x-forwarded-for"])

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    for path in ("/gradio_api/mcp/", "/gradio_api/queue/join"):
        scope = {"type": "http", "path": path, "client": (peer, 5000), "headers": headers}
        run_async(AgentAddress(app, behind_proxy)(scope, None, None))
    assert seen[0] == [expected.encode()], "one entry: the address the app would have seen"
    assert seen[1] == [h[1] for h in headers], "other routes untouched"
