"""No visitor can spoil the lab for another (issue 19), tried as a hostile client would, over
HTTP against the app launched on loopback on the tiny model: fresh sessions cannot evict a
visitor, and neither prefix_cache nor a compile tells one visitor what another asked or
uploaded, in counts or (since the work is the same) in time."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app import library
from tests.app.conftest import DOC_A, DOC_B

SECRET = "Internal memo: the merger with Birch Mills closes on 3 May at 41 dollars a share."


def call(url: str, api_name: str, data: list, session: str) -> tuple[str, object]:
    """One raw `POST /gradio_api/call/<api_name>` under a session hash of the caller's
    choosing, its result read from the event stream -> (event, data)."""
    with httpx.Client(base_url=url, timeout=60) as http:
        posted = http.post(f"gradio_api/call/{api_name}",
                           json={"data": data, "session_hash": session})
        posted.raise_for_status()
        event_id = posted.json()["event_id"]
        event = None
        with http.stream("GET", f"gradio_api/call/{api_name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event in ("complete", "error"):
                    return event, json.loads(line.removeprefix("data: "))
    raise AssertionError(f"{api_name}: no result")


def compare(client: Client, prefix: str, keys: list[str], algorithms: list[str]) -> dict:
    *_, report = client.predict(prefix, keys, "Who?", algorithms, 4, 0.2, 1,
                                api_name="/run_compare")
    return {r["algorithm"]: r for r in report["results"]}


def test_fresh_sessions_cannot_evict_a_visitor(served):
    """Issue 19, attack 1: about 210 calls of /store_stats with fresh session hashes, 8 at a
    time, pushed the longest-idle visitors out of the 200 remembered, their chunks evicted."""
    lab, url = served
    victim = Client(url, verbose=False)
    key = victim.predict(DOC_A + " The victim's.", "victim", api_name="/compile_text")[1][0]["key"]
    held = len(lab.libraries.sessions())
    sessions = [secrets.token_hex(8) for _ in range(lab.limits.max_sessions + 10)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda s: call(url, "store_stats", [], s), sessions))
    assert all(event == "complete" for event, _ in results)
    assert key in lab.engine.store, "the victim's chunk was evicted"
    assert compare(victim, "p", [key], ["naive"])["naive"]["tokens_reused"] > 0
    assert len(lab.libraries.sessions()) == held, "a session that holds nothing was remembered"
    victim.close()


def test_at_the_cap_the_newcomer_is_refused_and_nobody_is_dropped(served):
    lab, url = served
    keep = lab.libraries.limits
    holders = [Client(url, verbose=False) for _ in range(2)]
    keys = [c.predict(f"{DOC_B} holder {n}", "h", api_name="/compile_text")[1][0]["key"]
            for n, c in enumerate(holders)]
    lab.libraries.limits = replace(keep, max_sessions=len(lab.libraries.sessions()))
    try:
        event, data = call(url, "compile_text", [DOC_A, "newcomer"], secrets.token_hex(8))
        assert event == "error" and "the lab is full" in str(data), data
        newcomer = Client(url, verbose=False)
        with pytest.raises(AppError, match=r"the lab is full: .* try again later"):
            newcomer.predict(DOC_A, "newcomer", api_name="/compile_text")
        newcomer.predict(api_name="/store_stats")  # looking around is still free
        assert all(k in lab.engine.store for k in keys)
        assert compare(holders[0], "p", keys[:1], ["naive"])["naive"]["tokens_reused"] > 0
    finally:
        lab.libraries.limits = keep
        for client in holders:
            client.close()


def test_prefix_cache_does_not_tell_one_visitor_anothers_prompt(served):
    """Issue 19, attack 2: B read tokens_reused for guesses of A's prefix (11 for a wrong
    guess, 20 for the right one, 3 for an unrelated prefix) and so recovered it."""
    _, url = served
    alice, bob, carol = (Client(url, verbose=False) for _ in range(3))
    example = alice.predict(api_name="/example_request")[2][:1]
    compare(alice, SECRET, example, ["prefix_cache"])
    right = compare(bob, SECRET, example, ["prefix_cache"])["prefix_cache"]["tokens_reused"]
    unrelated = compare(carol, "You answer briefly.", example,
                        ["prefix_cache"])["prefix_cache"]["tokens_reused"]
    assert right == unrelated, "another visitor's secret prefix is reused"
    own = compare(alice, SECRET, example, ["prefix_cache"])["prefix_cache"]
    assert own["tokens_reused"] > len(SECRET) // 2, "a visitor's own requests are reused"


def test_compiling_another_visitors_text_reads_as_a_fresh_compile(served):
    """Issue 19, attack 2: compiling a guessed text answered "0 new, N already in the store"
    in 0.2 s (against ~6 s) when anyone had compiled it before."""
    lab, url = served
    alice, bob = Client(url, verbose=False), Client(url, verbose=False)
    compiles = lab.engine.store.num_compiled
    first, mine = alice.predict(SECRET, "memo", api_name="/compile_text")
    guessed, theirs = bob.predict(SECRET, "memo", api_name="/compile_text")
    assert guessed == first == ("Compiled **1** document(s) into **1** chunk(s): 1 new, "
                                "0 already in your library.")
    assert lab.engine.store.num_compiled == compiles + 2, "bob's compile was not a compile"
    assert theirs[0]["key"] != mine[0]["key"]
    again, _ = alice.predict(SECRET, "memo", api_name="/compile_text")
    assert again.endswith("0 new, 1 already in your library."), "a visitor's own copy dedups"


def test_the_library_shows_a_visitor_only_its_own_numbers(served):
    """Issue 19: the Library showed every visitor the store's bytes and compile passes, which
    moved when someone else compiled."""
    lab, url = served
    alice, bob = Client(url, verbose=False), Client(url, verbose=False)
    alice.predict(DOC_A + " Alice's.", "alice", api_name="/compile_text")
    rows, before = alice.predict(api_name="/store_stats")
    bob.predict(DOC_B + " Bob's.", "bob", api_name="/compile_text")
    compare(bob, "p", list(lab.example_titles)[:1], ["naive", "prefix_cache"])
    rows_after, after = alice.predict(api_name="/store_stats")
    assert after == before and rows_after["data"] == rows["data"]
    assert "Store (all visitors)" not in after and "1 compile pass(es) of yours" in after
    examples = [row for row in rows_after["data"] if row[1] == "example"]
    assert examples and all(row[4] == "—" and row[5] == "—" for row in examples)


def test_a_calls_counts_are_its_own_while_others_compile(lab):
    """Issue 19: under concurrent compiles the status read "8 new, -5 already in the
    store" (the store's count of compile passes, which others moved)."""
    def others_compile(*_args, **_kwargs) -> None:
        library.compile_text(lab, "other", f"{DOC_B} {len(lab.engine.store)}", "other")

    text, _ = library.compile_text(lab, "me", DOC_A, "mine", progress=others_compile)
    assert text == ("Compiled **1** document(s) into **1** chunk(s): 1 new, 0 already in your "
                    "library.")


def test_error_messages_carry_no_markdown_a_client_could_render(served):
    """Issue 19: messages escaped HTML but kept Markdown: "chunk '![t](http://…)' is not in
    your library" is an image wherever an API client renders the message."""
    _, url = served
    guess = "![t](http://e.example/x.png) <b>x</b> www.e.example a@e.example"  # a key's 64 chars
    with pytest.raises(AppError) as err:
        compare(Client(url, verbose=False), "p", [guess], ["naive"])
    text = str(err.value)
    assert "is not in your library" in text
    for markup in ("![", "](", "://", "<b>", "www.", "@"):
        assert markup not in text, markup
