"""The shared chunk store as the app shows it: local and shared bytes in the Library, and a
warning under the header while Redis fails."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app import library
from app.lab import Lab
from app.limits import AppLimits
from app.render import md
from app.ui import build_ui, header, store_note
from engine import Engine
from tests.app.conftest import DOC_A, free_port
from tests.engine.redis_server import REDIS_SERVER, RedisServer

ME = "visitor"


def _shared(engine: Engine, url: str) -> Lab:
    shared = Engine(replace(engine.config, store_url=url), model=engine.model)
    return Lab.open(shared, AppLimits(), persist=False)


def test_a_local_store_shows_no_shared_line_and_no_warning(lab):
    assert store_note(lab) == ""
    assert "Shared store" not in library.library_summary(lab, ME)
    assert "store: this process only" in header(lab)


@pytest.mark.skipif(not Path(REDIS_SERVER).exists(), reason="redis-server is not installed")
def test_the_library_shows_local_and_shared_bytes(engine, tmp_path):
    server = RedisServer(tmp_path, maxmemory="64mb").start()
    try:
        shared = _shared(engine, server.url)
        library.compile_text(shared, ME, DOC_A, "alder")
        summary = library.library_summary(shared, ME)
        assert "Shared store" not in summary, "totals that move with others' compiles shown"
        assert store_note(shared) == "" and "⚠️" not in summary
        assert "store: shared through Redis" in header(shared)
        assert server.url.split("//")[1] not in summary + header(shared), "address shown"
        operator = replace(shared, limits=AppLimits(operator=True))  # the operator sees where
        summary = library.library_summary(operator, ME)
        assert f"**Shared store (replicas):** {md('shared through ' + server.url)} · " in summary
        assert "of 64.0 MiB maxmemory · 0 chunk(s) read from other replicas" in summary
        assert f"store: shared through {server.url}" in header(operator)
    finally:
        server.kill()


def test_an_unreachable_redis_is_a_visible_warning_not_an_error(engine):
    shared = _shared(engine, f"redis://127.0.0.1:{free_port()}/0")
    _, compiled = library.compile_text(shared, ME, DOC_A, "alder")  # from local memory
    assert compiled and compiled[0]["key"] in shared.engine.store
    note = store_note(shared)
    assert note.startswith("<div id='store-warning'>⚠️ shared chunk store Redis unreachable")
    assert "127.0.0.1" not in note + library.library_summary(shared, ME), "address shown"
    assert "⚠️ shared chunk store" in library.library_summary(shared, ME)
    build_ui(shared)  # the header's note and its timer wire up
