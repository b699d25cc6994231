"""Fixtures for the app's tests: a tiny model loaded once, a fresh Engine (empty store, own
cache directory) per test, and helpers to write uploads."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from engine import Engine

DOC_A = ("Alder Foods sells fruit. Its head office is in Riverton. The company was founded in "
         "1950 by Ada Alder and now runs 40 shops.")
DOC_B = "Birch Mills makes paper. It has 3 mills and 900 workers. Its chair is Bo Birch."


@pytest.fixture(scope="session")
def tiny_model(tiny_engine_config):
    from engine.loader import load_model

    return load_model(tiny_engine_config)


@pytest.fixture()
def engine(tiny_engine_config, tiny_model, tmp_path) -> Engine:
    """A fresh engine over the shared tiny model: empty store, its own cache directory."""
    return Engine(replace(tiny_engine_config, cache_dir=str(tmp_path / "cache")), model=tiny_model)


@pytest.fixture()
def write(tmp_path):
    """write(name, content) -> the path of a file holding content (str or bytes)."""
    def make(name: str, content: str | bytes) -> str:
        path = tmp_path / "uploads" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return str(path)
    return make


def final(generator):
    """The last value a streaming handler yields."""
    *_, last = generator
    return last



def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
