"""Per-visitor libraries over one store: ownership, release, expiry, the one-call rule and the
byte budget of kept inspections (app/sessions.py), on the tiny model."""

from __future__ import annotations

import time

import pytest

from app.limits import AppLimits
from app.sessions import Libraries
from tests.app.conftest import DOC_A, DOC_B


def compile_for(libraries: Libraries, engine, session: str, text: str) -> str:
    key = engine.compile(text, session)
    libraries.add(session, [(key, f"{session}'s", engine.store.peek(key).num_tokens)])
    return key


@pytest.fixture()
def libraries(engine) -> Libraries:
    shared = engine.compile("An example everybody sees.", "example")
    return Libraries(engine.store, AppLimits(session_idle_s=60, max_sessions=3), [shared])


def test_visibility_is_own_chunks_plus_the_shared_ones(libraries, engine):
    a = compile_for(libraries, engine, "a", DOC_A)
    b = compile_for(libraries, engine, "b", DOC_B)
    assert libraries.visible("a") == libraries.shared | {a}
    assert libraries.visible("b") == libraries.shared | {b}
    libraries.check("a", [a, *libraries.shared])
    with pytest.raises(KeyError, match="is not in your library: compile it first"):
        libraries.check("a", [b])


def test_a_key_leaves_the_store_with_its_last_holder_never_a_shared_one(libraries, engine):
    a = compile_for(libraries, engine, "a", DOC_A)
    assert compile_for(libraries, engine, "b", DOC_A) == a
    assert libraries.remove("a", [a, *libraries.shared]) == ["a's"]  # shared keys: not a's
    assert a in engine.store
    libraries.release("b")
    assert a not in engine.store
    assert all(key in engine.store for key in libraries.shared)
    assert libraries.sessions() == ["a"]


def test_idle_sessions_and_the_oldest_beyond_the_cap_are_released(libraries, engine):
    keys = {s: compile_for(libraries, engine, s, f"{DOC_A} {s}") for s in "abc"}
    libraries.get("a").last_seen -= 61  # idle past the limit
    libraries.begin_call("b")
    libraries.get("b").last_seen -= 61  # idle too, but a call is queued: kept
    compile_for(libraries, engine, "d", DOC_B)
    assert sorted(libraries.sessions()) == ["b", "c", "d"]
    assert keys["a"] not in engine.store and keys["b"] in engine.store
    compile_for(libraries, engine, "e", DOC_B)  # 4 sessions > 3: the longest idle goes
    assert "c" not in libraries.sessions() and keys["c"] not in engine.store


def test_one_queued_or_running_call_per_session(libraries):
    libraries.begin_call("a")
    with pytest.raises(ValueError, match="you already have a model call queued or running"):
        libraries.begin_call("a")
    libraries.begin_call("b")  # another visitor is not held up
    libraries.end_call("a")
    libraries.begin_call("a")
    libraries.get("a").busy_since = time.monotonic() - 61  # a call that never ran
    libraries.begin_call("a")


def test_the_share_of_a_visitor_counts_its_own_chunks(libraries, engine):
    per_token = engine.store.format.bytes_per_token
    a = compile_for(libraries, engine, "a", DOC_A)
    assert libraries.used_bytes("a") == engine.store.peek(a).num_tokens * per_token
    engine.store.budget_bytes = 4 * libraries.used_bytes("a")
    libraries.limits = AppLimits(session_share=0.5)  # room for 2 of DOC_A
    libraries.check_room("a", engine.store.peek(a).num_tokens)
    with pytest.raises(ValueError, match=r"your library would hold .* over your share of"):
        libraries.check_room("a", engine.store.peek(a).num_tokens + 1)


def test_kept_inspections_stay_under_the_budget(libraries):
    libraries.limits = AppLimits(inspect_bytes=100)
    libraries.keep_inspection("a", "A", 60)
    libraries.keep_inspection("b", "B", 60)  # 120 > 100: a's goes (least recently seen)
    assert libraries.get("a").inspection is None and libraries.get("b").inspection == "B"
    libraries.keep_inspection("c", "C", 150)  # alone over the budget: not kept
    assert libraries.get("c").inspection is None and libraries.get("b").inspection is None


def test_clear_all_empties_every_library_and_the_store(libraries, engine):
    compile_for(libraries, engine, "a", DOC_A)
    compile_for(libraries, engine, "b", DOC_B)
    assert libraries.clear_all() == 3
    assert len(engine.store) == 0
    assert libraries.visible("a") == libraries.shared
