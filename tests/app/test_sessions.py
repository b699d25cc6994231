"""Per-visitor libraries over one store: ownership, release, expiry, the caps that refuse a
newcomer rather than drop anybody, the one-call rule, salts, pins and the byte budget of kept
inspections (app/sessions.py), on the tiny model."""

from __future__ import annotations

import time

import pytest

from app.clients import Visitor
from app.limits import AppLimits
from app.sessions import Libraries
from tests.app.conftest import DOC_A, DOC_B


def compile_for(libraries: Libraries, engine, session: str, text: str) -> str:
    key = engine.compile(text, session, libraries.salt(session))
    libraries.add(session, [(key, f"{session}'s", engine.store.peek(key).num_tokens)])
    return key


@pytest.fixture()
def libraries(engine) -> Libraries:
    shared = engine.compile("An example everybody sees.", "example")
    return Libraries(engine.store, AppLimits(session_idle_s=60, max_sessions=3,
                                             client_share=1.0), [shared])


def test_visibility_is_own_chunks_plus_the_shared_ones(libraries, engine):
    a = compile_for(libraries, engine, "a", DOC_A)
    b = compile_for(libraries, engine, "b", DOC_B)
    assert libraries.visible("a") == libraries.shared | {a}
    assert libraries.visible("b") == libraries.shared | {b}
    libraries.check("a", [a, *libraries.shared])
    with pytest.raises(KeyError, match="is not in your library: compile it first"):
        libraries.check("a", [b])


def test_the_same_text_is_one_chunk_per_visitor_and_each_visitors_own(libraries, engine):
    """Issue 19: one store-wide key per text told a visitor whether anyone had compiled it."""
    assert libraries.salt("a") == libraries.salt("a") != libraries.salt("b")
    assert libraries.salt("a") != "a" and len(libraries.salt("a")) == 32
    a, again = compile_for(libraries, engine, "a", DOC_A), compile_for(libraries, engine, "a",
                                                                        DOC_A)
    b = compile_for(libraries, engine, "b", DOC_A)
    assert a == again != b, "one visitor's text is stored once; another's is its own chunk"
    assert engine.store.peek(a).token_ids == engine.store.peek(b).token_ids
    assert libraries.remove("a", [a, *libraries.shared]) == ["a's"]  # shared keys: not a's
    assert a not in engine.store and b in engine.store
    assert all(key in engine.store for key in libraries.shared)
    assert libraries.sessions() == ["b"]  # a holds nothing now: forgotten


def test_sessions_that_hold_nothing_are_not_remembered(libraries, engine):
    """Issue 19: every session hash seen (even by /store_stats) made a library."""
    for number in range(1000):
        session = f"fresh-{number}"
        assert libraries.get(session).chunks == {}
        assert libraries.visible(session) == libraries.shared
        assert libraries.used_bytes(session) == 0
    assert libraries.sessions() == []
    with libraries.holding("tried"):  # a call that held a library and kept nothing
        pass
    assert libraries.sessions() == []


def test_a_newcomer_is_refused_at_the_cap_and_nobody_is_dropped(libraries, engine):
    """Issue 19: past EPIC_MAX_SESSIONS the longest idle visitors were released."""
    keys = {s: compile_for(libraries, engine, s, f"{DOC_A} {s}") for s in "abc"}
    with pytest.raises(ValueError, match="the lab is full: 3 visitors' libraries are held"):
        compile_for(libraries, engine, "d", DOC_B)
    assert sorted(libraries.sessions()) == ["a", "b", "c"]
    assert all(key in engine.store for key in keys.values())
    libraries.get("a").last_seen -= 61  # idle past the limit: released, room for one more
    libraries.begin_call("b")
    libraries.get("b").last_seen -= 61  # idle too, but a call is queued: kept
    compile_for(libraries, engine, "d", DOC_B)
    assert sorted(libraries.sessions()) == ["b", "c", "d"]
    assert keys["a"] not in engine.store and keys["b"] in engine.store


def test_one_address_holds_at_most_its_share_of_the_libraries(engine):
    libraries = Libraries(engine.store, AppLimits(max_sessions=4, client_share=0.5))
    assert libraries.limits.client_sessions == 2
    for name in ("p1", "p2"):
        compile_for(libraries, engine, Visitor(name, "10.0.0.1"), f"{DOC_A} {name}")
    with pytest.raises(ValueError, match="your address already holds 2 libraries, its share"):
        compile_for(libraries, engine, Visitor("p3", "10.0.0.1"), DOC_B)
    compile_for(libraries, engine, Visitor("q1", "10.0.0.2"), DOC_B)  # another address
    assert sorted(libraries.sessions()) == ["p1", "p2", "q1"]


def test_one_queued_or_running_call_per_session(libraries):
    libraries.begin_call("a")
    with pytest.raises(ValueError, match="you already have a model call queued or running"):
        libraries.begin_call("a")
    libraries.begin_call(Visitor("b", "10.0.0.9"))  # another visitor is not held up
    assert libraries.busy_clients() == {"local", "10.0.0.9"}
    assert libraries.sessions() == [], "a queued call holds no library"
    libraries.end_call("a")
    libraries.begin_call("a")
    libraries._busy["a"] = (time.monotonic() - 61, "local")  # a call that never ran
    libraries.begin_call("a")


def test_the_share_of_a_visitor_counts_its_own_chunks(libraries, engine):
    per_token = engine.store.format.bytes_per_token
    a = compile_for(libraries, engine, "a", DOC_A)
    assert libraries.used_bytes("a") == engine.store.peek(a).num_tokens * per_token
    engine.store.budget_bytes = 4 * libraries.used_bytes("a")
    libraries.limits = AppLimits(session_share=0.5, client_share=1.0)  # room for 2 of DOC_A
    libraries.check_room("a", engine.store.peek(a).num_tokens)
    with pytest.raises(ValueError, match=r"your library would hold .* over your share of"):
        libraries.check_room("a", engine.store.peek(a).num_tokens + 1)


def test_an_address_and_all_visitors_together_are_bounded_too(engine):
    per_token = engine.store.format.bytes_per_token
    libraries = Libraries(engine.store, AppLimits(session_share=0.5, client_share=0.5))
    a = compile_for(libraries, engine, Visitor("a", "10.0.0.1"), DOC_A)
    tokens = engine.store.peek(a).num_tokens
    engine.store.budget_bytes = 4 * tokens * per_token  # no examples: all of it is room
    libraries.check_room(Visitor("b", "10.0.0.1"), tokens)  # the address's 2 of 4
    with pytest.raises(ValueError, match="the libraries of your address would hold"):
        libraries.check_room(Visitor("b", "10.0.0.1"), tokens + 1)
    compile_for(libraries, engine, Visitor("c", "10.0.0.2"), DOC_A + " c")
    compile_for(libraries, engine, Visitor("d", "10.0.0.3"), DOC_A + " d")
    held = libraries._bytes(lambda lib: True) // per_token
    with pytest.raises(ValueError, match=r"the chunk store has no room for .*nobody.s chunks"):
        libraries.check_room(Visitor("e", "10.0.0.4"), 4 * tokens - held + 1)


def test_visitors_chunks_are_pinned_against_the_stores_budget(libraries, engine):
    """Issue 19: the store's LRU let anything compiled later push a visitor's chunks out."""
    a = compile_for(libraries, engine, "a", DOC_A)
    engine.store.budget_bytes = engine.store.stats().num_bytes + 1
    unowned = [engine.compile(f"{DOC_B} {n}", "benchmark passage") for n in range(3)]
    assert a in engine.store, "an owned chunk is never evicted by the budget"
    assert sum(key in engine.store for key in unowned) == 1, "unowned ones make room instead"
    libraries.remove("a", [a])
    assert a not in engine.store
    engine.compile(DOC_A + " later", "x")  # a's pin went with its last owner
    assert engine.store.stats().num_bytes <= engine.store.budget_bytes


def test_kept_inspections_stay_under_the_budget_and_drop_nobody_elses(libraries):
    libraries.limits = AppLimits(inspect_bytes=100, session_share=0.7, client_share=1.0)
    assert libraries.keep_inspection("a", "A", 60)
    assert not libraries.keep_inspection("b", "B", 60)  # 120 > 100: not kept, a's stays
    assert libraries.get("a").inspection == "A" and libraries.get("b").inspection is None
    assert libraries.sessions() == ["a"]
    assert libraries.keep_inspection("a", "A2", 70)  # its own last one makes room
    assert not libraries.keep_inspection("c", "C", 80)  # over one visitor's share of 70
    assert libraries.get("a").inspection == "A2"


def test_clear_all_empties_every_library_and_the_store(libraries, engine):
    compile_for(libraries, engine, "a", DOC_A)
    compile_for(libraries, engine, "b", DOC_B)
    assert libraries.clear_all() == 3
    assert len(engine.store) == 0
    assert libraries.visible("a") == libraries.shared
    assert libraries.sessions() == []
