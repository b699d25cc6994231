"""The app over HTTP with gradio_client: launched in-process on 127.0.0.1 on the tiny model.
Each Client is a visitor with its own session, as a browser page is."""

from __future__ import annotations

import json
import time

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

from app.ui_start import limits_table
from tests.app.conftest import DOC_A, DOC_B

API_NAMES = {"/compile_files", "/compile_text", "/store_stats", "/evict", "/clear",
             "/clear_store", "/save_store", "/load_store", "/run_compare", "/inspect",
             "/example_request", "/story", "/bench_accuracy", "/bench_speed",
             "/bench_frontier"}


def visitor(url: str) -> Client:
    return Client(url, verbose=False)


def compare(client, prefix, keys, algorithms=("full_recompute", "prefix_cache", "naive",
                                              "legolink"), k=4, ratio=0.2, tokens=3):
    return client.predict(prefix, keys, "Who?", list(algorithms), k, ratio, tokens,
                          api_name="/run_compare")


def compile_text(client, text, title):
    return client.predict(text, title, api_name="/compile_text")[1][0]["key"]


def test_every_action_is_a_named_endpoint_with_named_outputs(served):
    _, url = served
    api = visitor(url).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(api) == API_NAMES
    assert api["/run_compare"]["description"].startswith("Run each chosen algorithm")
    for name, endpoint in api.items():
        for value in endpoint["returns"]:
            assert value["label"] and not value["label"].startswith("value_"), (name, value)
    # Free inputs: any chunk key and any question, not only the examples on show.
    chunks, question = api["/run_compare"]["parameters"][1:3]
    assert chunks["type"] == {"type": "array", "items": {"type": "string"}}
    assert question["type"] == {"type": "string"}
    assert api["/story"]["parameters"][0]["type"] == {"type": "string"}


def test_upload_compile_and_compose_twice(served, tmp_path):
    lab, url = served
    client = visitor(url)
    (tmp_path / "alder.txt").write_text(DOC_A)
    (tmp_path / "birch.md").write_text(DOC_B)
    status, compiled = client.predict(
        [handle_file(str(tmp_path / "alder.txt")), handle_file(str(tmp_path / "birch.md"))],
        api_name="/compile_files")
    assert status.endswith("2 new, 0 already in your library.")
    keys = [c["key"] for c in compiled]
    compiles = lab.engine.store.stats().num_compiled

    table, answers, ttft, mask, _, _, _, report = compare(client, "You answer.", keys)
    assert table["headers"][:5] == ["algorithm", "answer", "first token", "whole answer",
                                    "same tokens"]
    assert [row[0] for row in table["data"]] == ["full_recompute", "prefix_cache", "naive",
                                                  "legolink-4"]
    assert "diff-row" in answers
    assert json.loads(ttft["plot"])["data"][0]["x"] == [row[0] for row in table["data"]]
    assert len(json.loads(mask["plot"])["data"][0]["z"]) == 4
    assert [c["hits"] for c in report["chunks"]] == [2, 2]  # naive + legolink

    *_, _summary, _verdicts, _cards, report = compare(client, "Be brief.", keys[::-1])
    assert report["compiled_during_run"] == 0
    assert lab.engine.store.stats().num_compiled == compiles
    reused = {r["algorithm"]: r["tokens_reused"] for r in report["results"]}
    assert reused["prefix_cache"] == 0 and reused["naive"] == len(DOC_A) + len(DOC_B) + 4

    rows, store_summary = client.predict(api_name="/store_stats")
    mine = {row[6]: row for row in rows["data"] if row[1] == "you"}
    assert set(mine) == set(keys) and [mine[k][4] for k in keys] == [4, 4]
    assert store_summary.startswith("**Your library:** 2 chunk(s) of yours")


def test_two_clients_cannot_see_use_evict_or_clear_each_others_chunks(served):
    lab, url = served
    alice, bob = visitor(url), visitor(url)
    a = compile_text(alice, DOC_A + " Alice.", "alice's")
    b = compile_text(bob, DOC_B + " Bob.", "bob's")
    alice_rows = alice.predict(api_name="/store_stats")[0]["data"]
    assert a in {r[6] for r in alice_rows} and b not in {r[6] for r in alice_rows}
    assert all(r[1] == "example" for r in alice_rows if r[6] != a)
    with pytest.raises(AppError, match="is not in your library"):
        compare(alice, "p", [b], ["naive"])
    with pytest.raises(AppError, match="is not in your library"):
        alice.predict("p", [b], "Who?", ["naive"], 4, 0.2, 0, True, 0, True, "minmax", 3,
                      api_name="/inspect")
    with pytest.raises(AppError, match=f"chunk '{b}' is not in your library"):
        alice.predict(b, api_name="/evict")
    assert alice.predict(api_name="/clear") == "Cleared your 1 chunk(s); the examples stay."
    assert b in lab.engine.store and a not in lab.engine.store
    with pytest.raises(AppError, match="is for the operator of this app"):
        alice.predict("CLEAR", api_name="/clear_store")
    with pytest.raises(AppError, match="is for the operator of this app"):
        alice.predict("default", api_name="/save_store")
    assert b in lab.engine.store
    compare(bob, "p", [b], ["naive"])  # bob's chunk still works for bob


def test_a_clients_chunks_are_released_when_it_closes(served):
    lab, url = served
    client = visitor(url)
    key = compile_text(client, DOC_A + " Closing.", "closing")
    assert key in lab.engine.store
    client.close()  # ends its heartbeat: Gradio runs the page's unload
    deadline = time.monotonic() + 30
    while key in lab.engine.store and time.monotonic() < deadline:
        time.sleep(0.2)
    assert key not in lab.engine.store


def test_one_queued_model_call_per_client(served):
    """Issue 14: nothing limited how many calls one visitor queued."""
    _, url = served
    client = visitor(url)
    key = compile_text(client, DOC_A, "alder")
    first = client.submit("p", [key] * 6, "Who?", ["full_recompute", "prefix_cache", "naive",
                                                   "cacheblend", "legolink"], 4, 0.2, 64,
                          api_name="/run_compare")
    time.sleep(0.5)
    with pytest.raises(ValidationError, match="you already have a model call queued or "
                                              "running"):
        client.predict("more text", "t", api_name="/compile_text")
    first.result()
    assert compile_text(client, "more text", "t")  # the first one done: the next one is taken
    visitor(url).predict(api_name="/store_stats")  # other visitors were never held up


@pytest.mark.parametrize(("endpoint", "args", "message"), [
    ("/run_compare", ("p", [], "Who?", ["naive"], 4, 0.2, 3), "no chunks chosen"),
    ("/run_compare", ("p", ["0" * 32], "Who?", ["naive"], 4, 0.2, 3),
     f"chunk {'0' * 32!r} is not in your library"),
    ("/run_compare", ("p", ["x"], "Who?", ["naive"], 2000, 0.2, 3),
     "recompute_k must be an integer in [0, 1024], got 2000"),
    ("/run_compare", ("p", ["x"], "Who?", ["naive"], None, 0.2, 3),
     "recompute_k must be an integer in [0, 1024], got None"),
    ("/run_compare", ("p", ["x"], "Who?", ["naive"], "16", 0.2, 3),
     "recompute_k must be an integer in [0, 1024], got '16'"),
    ("/run_compare", ("p", ["x"], "Who?", ["naive"], 4, 0.2, 65),
     "max_new_tokens must be an integer in [1, 64], got 65"),
    ("/run_compare", ("p", ["x"], "Who?", ["magic"], 4, 0.2, 3), "unknown algorithm 'magic'"),
    ("/run_compare", ("p", ["x"], " ", ["naive"], 4, 0.2, 3), "the question is empty"),
    ("/inspect", ("p", ["EXAMPLE"], "Who?", ["naive"], 4, 0.2, 0, True, 0, True, "raw", 3),
     "mode must be one of minmax, softmax, difference"),
    ("/compile_text", ("  ", ""), "the text is empty"),
    ("/evict", ("nope",), "chunk 'nope' is not in your library"),
    ("/bench_speed", ([256], None, ["naive"], 4, 0.2), "repeats must be an integer"),
    ("/bench_accuracy", ("HotpotQA sample (5 examples)", 5, ["naive"], 4, 0.2, 2),
     "examples must be an integer in [1, 2], got 5"),
])
def test_bad_input_over_the_api_gets_the_message_and_keeps_the_store(served, endpoint, args,
                                                                      message):
    lab, url = served
    args = tuple([next(iter(lab.example_titles))] if a == ["EXAMPLE"] else a for a in args)
    before = lab.engine.store.stats()
    with pytest.raises(AppError) as err:
        visitor(url).predict(*args, api_name=endpoint)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value)
    after = lab.engine.store.stats()
    # Nothing added (earlier tests' visitors may be released meanwhile, dropping theirs).
    assert {c.key for c in after.chunks} <= {c.key for c in before.chunks}
    assert after.num_compiled == before.num_compiled


def test_many_copies_of_a_chunk_are_bounded_work(served):
    """Issue 14: 400 copies of a 2-token chunk held the model slot 130 s (figures quadratic
    in the chunk count): the engine takes at most 64 chunks, and a long prompt is over the
    app's limit per call."""
    lab, url = served
    client = visitor(url)
    key = compile_text(client, "ab", "tiny")
    most = lab.engine.config.max_chunks_per_request
    *_, report = compare(client, "p", [key] * most, ["naive"], tokens=1)
    assert report["prompt_tokens"] == len("p") + most * len("ab\n\n") + len("Who?")
    # refused when it joins the queue, before anything reads the keys (issue 19)
    with pytest.raises(ValidationError, match=f"too many chunks: 400 given, at most {most} "
                                              "per"):
        compare(client, "p", [key] * 400, ["naive"], tokens=1)
    pieces = [c["key"] for c in client.predict("x " * 1000, "long", api_name="/compile_text")[1]]
    with pytest.raises(AppError, match="over this app's limit of 4,096 tokens per call"):
        compare(client, "p", pieces * 3, ["naive"], tokens=1)


def test_titles_are_escaped_in_every_output(served):
    """Issue 14: titles rendered unescaped in the prompt preview, status and evicted lines."""
    lab, url = served
    client = visitor(url)
    evil = "<img src=http://evil.example/x.png> ![](http://evil.example/y)"
    _status, compiled = client.predict(DOC_A + " evil", evil, api_name="/compile_text")
    key = compiled[0]["key"]
    assert compiled[0]["title"] == evil  # the data itself is kept as given (cleaned)
    lab.engine.store.evict(key)  # evicted by the store: listed in the summary
    _, summary = client.predict(api_name="/store_stats")
    assert "<img" not in summary and "](" not in summary and "http:" not in summary
    assert client.predict(key, api_name="/evict") == (
        "Evicted &lt;img src=http&#58;//evil\\.example/x\\.png&gt; \\!\\[\\]\\(http&#58;//evil"
        "\\.example/y\\).")


def test_the_limits_table_is_true_for_the_api_as_served(served):
    """Issue 14: the README said k 0..4096 and 256 new tokens; the table now comes from the
    limits the handlers enforce, and each bound it states is the one the API refuses past."""
    lab, url = served
    table = limits_table(lab)
    assert "| new tokens per answer | 64 |" in table
    assert ("| k: tokens recomputed per chunk (legolink, querylink, prophetkv, infoflow) | "
            "0..1024, default 16 |" in table)
    assert "| prompt + new tokens of one model call | 4,096 |" in table
    client = visitor(url)
    key = compile_text(client, "ab", "tiny")
    compare(client, "p", [key], ["legolink"], k=1024, tokens=64)  # at the bounds: served
    for k, tokens in ((1025, 64), (1024, 65)):
        with pytest.raises(AppError, match="must be an integer"):
            compare(client, "p", [key], ["legolink"], k=k, tokens=tokens)
