"""A visitor's share of the store counts the variant copies compiled for its chunks (LegoLink-0's
and APE's sink-free compile): they are its own, refused past its share, released with its
library from memory, the files and Redis, and never listed as documents (app/shares.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gradio as gr
import pytest

from app import compose, library
from app.lab import Lab
from app.limits import AppLimits
from app.render import size_text
from app.sessions import Libraries
from engine import Engine
from tests.app.conftest import DOC_A, DOC_B, final
from tests.engine.redis_server import REDIS_SERVER, RedisServer

ME, OTHER = "visitor-1", "visitor-2"


def compile_for(libraries: Libraries, engine: Engine, session: str, text: str) -> str:
    key = engine.compile(text, session, libraries.salt(session))
    libraries.add(session, [(key, f"{session}'s", engine.store.peek(key).num_tokens)])
    return key


def copies_of(engine: Engine, keys: list[str]) -> list[str]:
    """What legolink0 links for `keys` behind a prefix: a copy of each, compiled now."""
    return engine.compile_variants(engine.request(prefix="p", chunks=keys, question="q?",
                                                  algorithm="legolink0"))


def held(engine: Engine) -> set[str]:
    return {info.key for info in engine.store.stats().chunks}


def exact(engine: Engine) -> None:
    stats = engine.store.stats()
    assert stats.num_bytes == sum(c.num_bytes for c in stats.chunks), "the store's bytes drift"
    assert stats.num_bytes <= stats.budget_bytes


@pytest.fixture()
def libraries(engine) -> Libraries:
    return Libraries(engine.store, AppLimits(session_share=1.0, client_share=1.0))


def test_a_visitors_copies_count_in_its_share_and_go_with_its_library(libraries, engine):
    store, per_token = engine.store, engine.store.format.bytes_per_token
    mine = [compile_for(libraries, engine, ME, text) for text in (DOC_A, DOC_B)]
    theirs = [compile_for(libraries, engine, OTHER, DOC_A)]
    tokens = sum(store.peek(k).num_tokens for k in mine)
    assert libraries.used_bytes(ME) == tokens * per_token
    my_copies, their_copies = copies_of(engine, mine), copies_of(engine, theirs)
    assert libraries.used_bytes(ME) == 2 * tokens * per_token, "a copy is not in the share"
    assert libraries._bytes(lambda lib: True) == libraries.used_bytes(ME) + 2 * (
        store.peek(theirs[0]).num_bytes)
    exact(engine)
    libraries.release(ME)
    assert held(engine).isdisjoint(mine + my_copies), "a released visitor's copy stayed"
    assert all(store.evicted_token_ids(k) is None for k in mine + my_copies)
    assert set(theirs + their_copies) <= held(engine), "another visitor's copies went"
    assert libraries.used_bytes(OTHER) == 2 * store.peek(theirs[0]).num_bytes
    exact(engine)


def test_removing_a_chunk_drops_its_copy_only(libraries, engine):
    mine = [compile_for(libraries, engine, ME, text) for text in (DOC_A, DOC_B)]
    copies = copies_of(engine, mine)
    assert libraries.remove(ME, [mine[0]]) == [f"{ME}'s"]
    assert mine[0] not in engine.store and copies[0] not in engine.store
    assert copies[1] in engine.store
    assert libraries.used_bytes(ME) == 2 * engine.store.peek(mine[1]).num_bytes
    exact(engine)


def test_a_copy_past_the_share_is_refused_and_nothing_is_stored(libraries, engine):
    store = engine.store
    key = compile_for(libraries, engine, ME, DOC_A)
    size = store.peek(key).num_bytes
    store.budget_bytes = 4 * size  # a share of 1.5 chunks: the chunk fits, its copy does not
    libraries.limits = AppLimits(session_share=0.375, client_share=1.0)
    before = store.stats()
    with pytest.raises(ValueError, match=(
            f"its 'sink3' copy of your chunk '{ME}'s' .* cannot be made: your library would "
            "hold .* over your share of .*: evict some of your chunks or choose another "
            "algorithm")):
        engine.run("p", [key], "q?", "legolink0", max_new_tokens=1)
    after = store.stats()
    assert (after.num_compiled, after.num_bytes, after.num_chunks) == (
        before.num_compiled, before.num_bytes, before.num_chunks), "a refused copy was kept"
    libraries.limits = AppLimits(session_share=0.5, client_share=1.0)  # room for both now
    engine.run("p", [key], "q?", "legolink0", max_new_tokens=1)
    assert libraries.used_bytes(ME) == 2 * size


def test_a_salted_chunk_nobody_holds_gets_no_copy(libraries, engine):
    key = engine.compile(DOC_A, "gone", libraries.salt(ME))  # never added, or released since
    with pytest.raises(KeyError, match="is not in your library"):
        copies_of(engine, [key])
    assert {info.variant for info in engine.store.stats().chunks} == {""}


def test_the_library_tab_lists_documents_with_their_copies_bytes(lab: Lab):
    _, compiled = library.compile_text(lab, ME, DOC_A, "alder")
    key = compiled[0]["key"]
    final(compose.run_compare(lab, ME, "p", [key], "Who?", ["legolink0"], 4, 0.5, 2))
    copy = lab.engine.store.key_for(lab.engine.store.peek(key).token_ids, "sink3",
                                    lab.libraries.salt(ME))
    assert copy in lab.engine.store and copy not in lab.libraries.visible(ME)
    table = library.library_table(lab, ME)
    assert copy not in set(table["key"]), "a variant copy is listed as a document"
    mine = table[table["from"] == "you"]
    size = lab.engine.store.peek(key).num_bytes
    assert list(mine["key"]) == [key]
    assert list(mine["KV size"]) == [f"{size_text(size)} + "
                                     f"{size_text(size)} variant copy"]
    summary = library.library_summary(lab, ME)
    assert f"yours take **{size_text(2 * size)}**" in summary
    assert library.clear(lab, ME) == "Cleared your 1 chunk(s); the examples stay."
    assert key not in lab.engine.store and copy not in lab.engine.store
    exact(lab.engine)


def test_run_compare_refuses_a_copy_past_the_share(lab: Lab):
    _, compiled = library.compile_text(lab, ME, DOC_A, "alder")
    key, store = compiled[0]["key"], lab.engine.store
    lab.libraries.limits = replace(lab.libraries.limits, session_share=(
        1.5 * store.peek(key).num_bytes / store.budget_bytes))
    before = store.stats()
    with pytest.raises(gr.Error, match=r"its 'sink3' copy of your chunk 'alder' .* over your"):
        final(compose.run_compare(lab, ME, "p", [key], "Who?", ["legolink0"], 4, 0.5, 2))
    assert store.stats().num_bytes == before.num_bytes


@pytest.fixture()
def redis_engine(engine, tmp_path):
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed (scripts/test.sh installs Debian's package)")
    server = RedisServer(tmp_path).start()
    yield Engine(replace(engine.config, store_url=server.url, store_prefetch=False),
                 model=engine.model)
    server.kill()


def test_a_released_library_leaves_nothing_in_redis(redis_engine):
    libraries = Libraries(redis_engine.store, AppLimits(session_share=1.0, client_share=1.0))
    mine = [compile_for(libraries, redis_engine, ME, text) for text in (DOC_A, DOC_B)]
    theirs = [compile_for(libraries, redis_engine, OTHER, DOC_A)]
    my_copies, their_copies = copies_of(redis_engine, mine), copies_of(redis_engine, theirs)
    tier = redis_engine.store.tier
    assert all(tier.get(k) is not None for k in mine + my_copies + theirs + their_copies)
    libraries.release(ME)
    assert all(tier.get(k) is None for k in mine + my_copies), "left in the shared tier"
    assert all(tier.get(k) is not None for k in theirs + their_copies), "another's went"
