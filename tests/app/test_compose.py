"""Compose tab handlers on the tiny model: the comparison, its reuse report, its refusals."""

from __future__ import annotations

import gradio as gr
import pytest

from app import compose, library
from app.lab import Lab
from app.limits import AppLimits
from engine import Kind
from tests.app.conftest import DOC_A, DOC_B, final

ALL = ["full_recompute", "prefix_cache", "naive", "cacheblend", "legolink"]
ME = "visitor-1"


@pytest.fixture()
def keys(lab) -> list[str]:
    return [library.compile_text(lab, ME, DOC_A, "alder")[1][0]["key"],
            library.compile_text(lab, ME, DOC_B, "birch")[1][0]["key"]]


def compare(lab, keys, prefix="You answer.", algorithms=ALL, k=4, ratio=0.5, tokens=3,
            question="Who?", session=ME):
    return final(compose.run_compare(lab, session, prefix, keys, question, algorithms, k, ratio,
                                     tokens))


def test_run_compare_rows_figures_and_report(lab, keys):
    table, answers, ttft, mask, summary, _verdicts, _cards, report = compare(lab, keys)
    assert list(table.columns) == compose.TABLE_HEADERS
    assert list(table["algorithm"]) == ["full_recompute", "prefix_cache", "naive",
                                        "cacheblend-50", "legolink-4"]
    n = report["prompt_tokens"]
    # byte tokenizer, no template: prefix + both chunks (each + "\n\n") + question
    assert n == len("You answer.") + len(DOC_A) + 2 + len(DOC_B) + 2 + len("Who?")
    rows = {r["algorithm"]: r for r in report["results"]}
    assert rows["full_recompute"]["first_token_kl"] == 0.0
    assert table.iloc[0]["first token"] == table.iloc[0]["whole answer"] == "reference"
    assert rows["naive"]["tokens_reused"] == n - len("You answer.") - len("Who?")
    # legolink-4 recomputes the first 4 tokens of both chunks (neither is at position 0)
    assert rows["legolink-4"]["tokens_reused"] == rows["naive"]["tokens_reused"] - 8
    assert rows["legolink-4"]["mask"].count(str(int(Kind.RECOMPUTED))) == 8
    assert rows["prefix_cache"]["tokens_reused"] == 0  # a fresh engine has seen no prefix
    for name, row in rows.items():
        assert row["tokens_computed"] + row["tokens_reused"] == n, name
        assert 0 <= row["same_tokens"] <= row["num_tokens"] == 3, name
        assert row["answer_match"] == (row["same_tokens"] == 3), name
        if row["answer_match"]:
            assert row["first_token_match"], name
    assert rows["prefix_cache"]["answer_match"]  # it computes what full recompute computes
    for label, cells in zip(table["algorithm"], table.itertuples(), strict=True):
        assert cells[5] == f"{rows[label]['same_tokens']} of 3"
    assert answers.count("class='diff-row'") == 5
    assert list(ttft.data[0].x) == list(table["algorithm"])
    assert [list(z) for z in mask.data[0].z] == [[int(c) for c in r["mask"]]
                                                  for r in report["results"]]
    # naive, cacheblend and legolink read the chunks: 3 hits each; nothing was compiled
    assert [c["hits"] for c in report["chunks"]] == [3, 3]
    assert report["compiled_during_run"] == 0
    assert "**0** compiled during this run" in summary and "C1 +3, C2 +3" in summary
    assert "prefix_cache reused **0** of" in summary and "masked attention path" in summary
    assert "A model this small answers many questions wrongly" in summary


def test_new_prefix_and_order_reuse_the_chunks_not_the_prefix_cache(lab, keys):
    compare(lab, keys)
    *_, same = compare(lab, keys)
    *_, summary, _verdicts, _cards, other = compare(lab, list(reversed(keys)), prefix="Be brief.")
    reused = {r["algorithm"]: r["tokens_reused"] for r in same["results"]}
    assert reused["prefix_cache"] == same["prompt_tokens"] - 1  # all but the last position
    reused = {r["algorithm"]: r["tokens_reused"] for r in other["results"]}
    assert reused["prefix_cache"] == 0  # another prefix: prefix caching reuses nothing
    assert reused["naive"] == len(DOC_A) + len(DOC_B) + 4  # every chunk token, in any order
    assert other["compiled_during_run"] == 0
    assert [c["title"] for c in other["chunks"]] == ["birch", "alder"]
    assert [c["hits"] for c in other["chunks"]] == [3, 3]  # this run's own, never a total
    assert "C1 +3, C2 +3" in summary


def test_same_request_twice_gives_the_same_answers_and_masks(lab, keys):
    *_, first = compare(lab, keys, algorithms=["naive", "legolink", "cacheblend"])
    *_, second = compare(lab, keys, algorithms=["naive", "legolink", "cacheblend"])
    strip = [(r["algorithm"], r["text"], r["mask"]) for r in first["results"]]
    assert strip == [(r["algorithm"], r["text"], r["mask"]) for r in second["results"]]


def test_reference_runs_even_when_unchecked(lab, keys):
    table, _, ttft, _, _, _, _, report = compare(lab, keys, algorithms=["naive"])
    assert list(table["algorithm"]) == ["naive"]
    assert table.iloc[0]["first token"] in ("✓ same", "✗ differs")
    assert report["results"][0]["first_token_kl"] > 0.0
    assert list(ttft.data[0].x) == ["naive"]


def test_answers_stream_into_the_table(lab, keys):
    steps = list(compose.run_compare(lab, ME, "", keys, "Who?", ["naive"], 4, 0.5, 4))
    partial = [s[0] for s in steps if s[1] == gr.skip()]
    assert len(partial) == 3  # tokens 1-3 stream; the 4th arrives with the result
    assert all(t.iloc[-1]["answer"].endswith(" ▌") for t in partial)
    assert partial[0].iloc[-1]["algorithm"] == "naive"
    answer = steps[-1][0].iloc[0]["answer"]
    growing = [t.iloc[-1]["answer"].removesuffix(" ▌") for t in partial]
    assert all(answer.startswith(text) for text in growing)
    assert [len(text) for text in growing] == sorted(len(text) for text in growing)


@pytest.mark.parametrize(("change", "message"), [
    ({"question": "  "}, "the question is empty: ask something"),
    ({"keys": []}, "no chunks chosen: pick at least one compiled chunk"),
    ({"algorithms": []}, "choose at least one algorithm"),
    ({"algorithms": ["naive", "magic"]}, "unknown algorithm 'magic'"),
    ({"k": 2000}, "recompute_k must be an integer in [0, 1024], got 2000"),
    ({"k": 2.5}, "recompute_k must be an integer in [0, 1024], got 2.5"),
    ({"k": None}, "recompute_k must be an integer in [0, 1024], got None"),
    ({"k": "16"}, "recompute_k must be an integer in [0, 1024], got '16'"),
    ({"ratio": 1.5}, "recompute_ratio must be in [0, 1], got 1.5"),
    ({"ratio": "lots"}, "recompute_ratio must be in [0, 1], got 'lots'"),
    ({"ratio": None}, "recompute_ratio must be in [0, 1], got None"),
    ({"tokens": 0}, "max_new_tokens must be an integer in [1, 64], got 0"),
    ({"tokens": 65}, "max_new_tokens must be an integer in [1, 64], got 65"),
    ({"tokens": None}, "max_new_tokens must be an integer in [1, 64], got None"),
    ({"keys": ["0" * 32]}, f"chunk {'0' * 32!r} is not in your library: compile it first"),
    ({"session": "someone else"}, "chunk"),
])
def test_bad_requests_get_clear_messages_and_keep_the_store(lab, engine, keys, change, message):
    before = engine.store.stats()
    args = {"keys": keys} | change
    with pytest.raises(gr.Error) as err:
        compare(lab, **args)
    assert err.value.message.startswith(message)
    after = engine.store.stats()
    assert [c.key for c in after.chunks] == [c.key for c in before.chunks]
    assert after.num_compiled == before.num_compiled


def test_an_evicted_chunk_is_recompiled_by_the_next_run(lab, engine, keys):
    engine.store.evict(keys[1])
    assert "evicted: recompiled when the prompt runs" in compose.order_preview(lab, ME, keys)
    compiles = engine.store.stats().num_compiled
    *_, summary, _verdicts, _cards, report = compare(lab, keys, algorithms=["naive"])
    assert report["compiled_during_run"] == 1 and engine.store.num_compiled == compiles + 1
    assert "**1** compiled during this run" in summary
    assert keys[1] in engine.store


def test_order_helpers(lab, keys):
    assert compose.reverse_order(keys) == keys[::-1]
    assert compose.rotate_order(["a", "b", "c"]) == ["b", "c", "a"]
    assert compose.rotate_order(None) == []
    preview = compose.order_preview(lab, ME, [keys[1], keys[0], "f" * 32])
    assert preview.startswith("**Prompt order:** prefix → C1 → C2 → C3 → question")
    lines = preview.split("  \n")[1:]
    assert lines[0] == f"1. birch ({len(DOC_B) + 2} tokens)"
    assert lines[1] == f"2. alder ({len(DOC_A) + 2} tokens)"
    assert lines[2] == "3. ffffffffffff — not in your library"
    assert "No chunks chosen" in compose.order_preview(lab, ME, [])
    assert compose.request_summary("", keys, "Who?" * 30) == (
        "**Request from the Compose tab:** prefix “(none)” · 2 chunk(s) · question “"
        + ("Who?" * 20) + "”")


def test_a_prompt_over_the_context_limit_is_refused(lab, engine):
    long_text = "word " * 100  # 500 byte tokens: nine of them exceed the 4096 of one call
    key = library.compile_text(lab, ME, long_text, "long")[1][0]["key"]
    with pytest.raises(gr.Error) as err:
        compare(lab, [key] * 9, algorithms=["naive"])
    n = 9 * (len(long_text.strip()) + 2) + len("You answer.") + len("Who?")
    assert err.value.message.startswith(f"the prompt has {n:,} tokens; with 3 new tokens it is "
                                        "over this app's limit of 4,096 tokens per call")
    assert engine.store.peek(key).hits == 0  # a refused request is no use


def test_the_app_bounds_a_call_tighter_than_the_engine(engine):
    lab = Lab.open(engine, AppLimits(context_tokens=200, new_tokens=2))
    key = library.compile_text(lab, ME, DOC_A, "alder")[1][0]["key"]
    with pytest.raises(gr.Error) as err:
        compare(lab, [key, key], tokens=2)
    assert "over this app's limit of 200 tokens per call" in err.value.message
    with pytest.raises(gr.Error) as err:
        compare(lab, [key], tokens=3)
    assert err.value.message == "max_new_tokens must be an integer in [1, 2], got 3"


def test_the_same_chunk_twice_is_linked_twice(lab, keys):
    *_, report = compare(lab, [keys[0], keys[0]], algorithms=["naive", "legolink"])
    assert [c["title"] for c in report["chunks"]] == ["alder", "alder"]
    assert report["chunks"][0]["hits"] == 4  # 2 reading algorithms x 2 uses
    assert report["compiled_during_run"] == 0
