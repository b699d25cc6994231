"""The app over HTTP with gradio_client: launched in-process on 127.0.0.1 on the tiny model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from app.examples import compile_examples, load_presets
from app.ui import build_ui, launch
from engine import Engine
from tests.app.conftest import DOC_A, DOC_B, free_port

API_NAMES = {"/compile_files", "/compile_text", "/store_stats", "/evict", "/clear",
             "/save_store", "/load_store", "/run_compare", "/inspect", "/example_request",
             "/bench_accuracy", "/bench_speed"}


@pytest.fixture(scope="module")
def served(tiny_engine_config, tiny_model, tmp_path_factory):
    """(engine, client) of one app server for the module, example documents compiled."""
    cache = tmp_path_factory.mktemp("client-cache")
    engine = Engine(replace(tiny_engine_config, cache_dir=str(cache)), model=tiny_model)
    compile_examples(engine)
    demo = build_ui(engine)
    port = free_port()
    launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    try:
        yield engine, Client(f"http://127.0.0.1:{port}/", verbose=False)
    finally:
        demo.close()


def compare(client, prefix, keys, algorithms=("full_recompute", "prefix_cache", "naive",
                                              "legolink")):
    return client.predict(prefix, keys, "Who?", list(algorithms), 4, 0.2, 3,
                          api_name="/run_compare")


def test_every_action_is_a_named_endpoint(served):
    _, client = served
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == API_NAMES
    assert named["/run_compare"]["description"].startswith("Run each chosen algorithm")


def test_upload_compile_and_compose_twice(served, tmp_path):
    engine, client = served
    (tmp_path / "alder.txt").write_text(DOC_A)
    (tmp_path / "birch.md").write_text(DOC_B)
    status, compiled = client.predict(
        [handle_file(str(tmp_path / "alder.txt")), handle_file(str(tmp_path / "birch.md"))],
        api_name="/compile_files")
    assert status.endswith("2 new, 0 already in the store.")
    keys = [c["key"] for c in compiled]
    compiles = engine.store.stats().num_compiled

    table, ttft, mask, summary, report = compare(client, "You answer.", keys)
    assert table["headers"][0] == "algorithm"
    assert [row[0] for row in table["data"]] == ["full_recompute", "prefix_cache", "naive",
                                                  "legolink-4"]
    assert all(row[1] for row in table["data"])  # every algorithm answered
    assert json.loads(ttft["plot"])["data"][0]["x"] == [row[0] for row in table["data"]]
    assert len(json.loads(mask["plot"])["data"][0]["z"]) == 4
    assert [c["hits_after"] for c in report["chunks"]] == [2, 2]  # naive + legolink

    # Another prefix and the other order: the chunks are reused, nothing recompiles, and
    # prefix caching finds no common prefix.
    _, _, _, summary, report = compare(client, "Be brief.", keys[::-1])
    assert report["compiled_during_run"] == 0
    assert engine.store.stats().num_compiled == compiles
    assert [c["title"] for c in report["chunks"]] == ["birch.md", "alder.txt"]
    assert [(c["hits_before"], c["hits_after"]) for c in report["chunks"]] == [(2, 4), (2, 4)]
    reused = {r["algorithm"]: r["tokens_reused"] for r in report["results"]}
    assert reused["prefix_cache"] == 0 and reused["naive"] == len(DOC_A) + len(DOC_B) + 4
    assert "**0** compiled during this run" in summary

    rows, store_summary = client.predict(api_name="/store_stats")
    hits = {row[1]: row[5] for row in rows["data"]}
    assert [hits[k] for k in keys] == [4, 4]
    assert f"{compiles} compile passes" in store_summary


def test_inspect_returns_both_figures(served):
    engine, client = served
    key = engine.compile(DOC_A, "alder")
    key2 = engine.compile(DOC_B, "birch")
    heatmap, sinks, summary = client.predict("Hi.", [key, key2], "Who?", ["naive", "legolink"],
                                             4, 0.2, 0, True, 0, True, "minmax", 3,
                                             api_name="/inspect")
    heat = json.loads(heatmap["plot"])
    assert [t["type"] for t in heat["data"]] == ["heatmap", "heatmap"]
    assert [t["name"] for t in json.loads(sinks["plot"])["data"]] == ["naive", "legolink-4"]
    assert summary.startswith("Mean attention mass on the first 3 tokens of each chunk not at")


def test_example_request_fills_the_compose_tab(served):
    engine, client = served
    presets = load_presets()
    preset, prefix, chunks, question, algorithms = client.predict(api_name="/example_request")
    assert (preset, question, algorithms) == (presets.example_prefix, presets.example_question,
                                              presets.example_algorithms)
    assert prefix == presets.prefixes[preset]
    assert len(chunks) >= len(presets.example_documents) and all(k in engine.store for k in chunks)


@pytest.mark.parametrize(("endpoint", "args", "message"), [
    ("/run_compare", ("p", [], "Who?", ["naive"], 4, 0.2, 3), "no chunks chosen"),
    ("/run_compare", ("p", ["0" * 32], "Who?", ["naive"], 4, 0.2, 3),
     f"chunk {'0' * 32!r} is not in the store"),
    ("/run_compare", ("p", ["0" * 32], "Who?", ["naive"], 2000, 0.2, 3),
     "Value 2000 is greater than maximum value 1024"),  # Gradio checks slider bounds itself
    ("/run_compare", ("p", ["0" * 32], "Who?", ["magic"], 4, 0.2, 3),
     "Value: 'magic' (type: <class 'str'>) is not in the list of choices"),
    ("/run_compare", ("p", ["0" * 32], " ", ["naive"], 4, 0.2, 3), "the question is empty"),
    ("/compile_text", ("  ", ""), "the text is empty"),
    ("/evict", ("nope",), "chunk 'nope' is not in the store"),
    ("/save_store", ("../../etc",), "a store name is 1-64 letters"),
    ("/load_store", ("missing",), "no saved store named 'missing'"),
])
def test_bad_input_over_the_api_gets_the_message_and_keeps_the_store(served, endpoint, args,
                                                                      message):
    engine, client = served
    before = engine.store.stats()
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name=endpoint)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)
    after = engine.store.stats()
    assert {c.key for c in after.chunks} == {c.key for c in before.chunks}
    assert after.num_compiled == before.num_compiled


def test_bad_upload_over_the_api(served, tmp_path):
    engine, client = served
    (tmp_path / "empty.txt").write_bytes(b"")
    count = len(engine.store)
    with pytest.raises(AppError) as err:
        client.predict([handle_file(str(tmp_path / "empty.txt"))], api_name="/compile_files")
    assert "empty.txt: the file is empty" in str(err.value)
    assert len(engine.store) == count


def test_save_and_load_over_the_api(served):
    engine, client = served
    count = len(engine.store)
    assert client.predict("snap", api_name="/save_store") == \
        f"Saved {count} chunk(s) to store 'snap'."
    assert client.predict(api_name="/clear") == f"Cleared {count} chunk(s)."
    assert client.predict("snap", api_name="/load_store") == \
        f"Loaded {count} new chunk(s) from store 'snap'."
    assert len(engine.store) == count
