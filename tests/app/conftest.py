"""Fixtures for the app's tests: a tiny model loaded once, the example documents compiled once
(kept as the app keeps them, beside the model cache), and per test a fresh Engine and Lab
(empty store but the examples, its own cache directory)."""

from __future__ import annotations

import shutil
import socket
from dataclasses import replace

import pytest

from app.examples import examples_dir
from app.lab import Lab
from app.limits import AppLimits
from engine import Engine

DOC_A = ("Alder Foods sells fruit. Its head office is in Riverton. The company was founded in "
         "1950 by Ada Alder and now runs 40 shops.")
DOC_B = "Birch Mills makes paper. It has 3 mills and 900 workers. Its chair is Bo Birch."


@pytest.fixture(scope="session")
def tiny_model(tiny_engine_config):
    from engine import load_model

    return load_model(tiny_engine_config)


@pytest.fixture(scope="session")
def examples_cache(tiny_engine_config, tiny_model, tmp_path_factory):
    """A cache directory holding the examples' KV, compiled once for the whole session."""
    cache = tmp_path_factory.mktemp("examples-cache")
    Lab.open(Engine(replace(tiny_engine_config, cache_dir=str(cache)), model=tiny_model))
    return cache


def make_engine(config, model, examples_cache, directory) -> Engine:
    """A fresh engine over the shared tiny model whose cache directory already holds the
    examples' KV (as after an earlier start)."""
    engine = Engine(replace(config, cache_dir=str(directory)), model=model)
    source = examples_dir(engine).relative_to(engine.config.cache_dir)
    shutil.copytree(examples_cache / source, directory / source)
    return engine


@pytest.fixture()
def engine(tiny_engine_config, tiny_model, examples_cache, tmp_path) -> Engine:
    """A fresh engine over the shared tiny model: empty store, its own cache directory."""
    return make_engine(tiny_engine_config, tiny_model, examples_cache, tmp_path / "cache")


@pytest.fixture()
def lab(engine) -> Lab:
    """The app's state over a fresh engine, the examples loaded, default limits."""
    return Lab.open(engine, AppLimits())


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


def serve(lab: Lab):
    """Launch the app over `lab` on a free loopback port -> (demo, url)."""
    from app.ui import build_ui, launch

    demo = build_ui(lab)
    port = free_port()
    launch(demo, lab, prevent_thread_lock=True, server_name="127.0.0.1", server_port=port,
           quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def served(tiny_engine_config, tiny_model, examples_cache, tmp_path_factory):
    """(lab, url) of one app server for the module, over a fresh engine, default limits."""
    engine = make_engine(tiny_engine_config, tiny_model, examples_cache,
                         tmp_path_factory.mktemp("served") / "cache")
    lab = Lab.open(engine, AppLimits())
    demo, url = serve(lab)
    try:
        yield lab, url
    finally:
        demo.close()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a browser playwright downloads)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
