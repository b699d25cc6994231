"""The bundled examples: documents and presets that fit together, their KV compiled on the
first start and loaded (not compiled) on later ones, the example request, the story."""

from __future__ import annotations

import json
from dataclasses import replace

from app import compose, start
from app.examples import (
    compile_examples,
    example_documents,
    examples_dir,
    load_presets,
    load_story,
    save_story,
)
from app.lab import Lab
from app.limits import AppLimits
from engine import Engine

ME = "visitor-1"


def test_presets_and_documents_fit_together():
    presets = load_presets()
    documents = example_documents()
    assert len(documents) == 4
    assert set(presets.example_documents) == set(documents)
    assert set(presets.story_documents) <= set(documents)
    assert len(presets.story_prefixes) == 2 and set(presets.story_prefixes) <= set(
        presets.prefixes)
    assert presets.example_prefix in presets.prefixes
    assert presets.example_question in presets.questions
    for doc in documents.values():
        assert 200 <= len(doc.text.split()) <= 400
        assert not doc.title.startswith("#") and doc.title in doc.text


def test_examples_are_compiled_once_then_loaded_from_beside_the_model(tiny_engine_config,
                                                                    tiny_model, tmp_path):
    config = replace(tiny_engine_config, cache_dir=str(tmp_path))
    first = Engine(config, model=tiny_model)
    lab = Lab.open(first, AppLimits())
    compiled = first.store.stats().num_compiled
    assert compiled == len(lab.example_titles) > 0
    directory = examples_dir(first)
    assert directory.parent == tmp_path / "examples"
    saved = sorted(p.stem for p in directory.glob("*.safetensors"))
    assert saved == sorted(lab.example_titles)
    assert json.loads((directory / "manifest.json").read_text())["documents"] == lab.examples

    later = Engine(config, model=tiny_model)  # the next start: nothing compiled
    again = Lab.open(later, AppLimits())
    assert later.store.stats().num_compiled == 0
    assert again.examples == lab.examples and all(k in later.store for k in again.example_titles)
    assert again.example_titles == lab.example_titles


def test_a_damaged_example_file_is_compiled_again(tiny_engine_config, tiny_model, tmp_path):
    config = replace(tiny_engine_config, cache_dir=str(tmp_path))
    lab = Lab.open(Engine(config, model=tiny_model), AppLimits())
    victim = examples_dir(lab.engine) / f"{next(iter(lab.example_titles))}.safetensors"
    victim.write_bytes(victim.read_bytes()[:100])
    later = Engine(config, model=tiny_model)
    again = Lab.open(later, AppLimits())
    assert later.store.stats().num_compiled == 1  # only the damaged one, and saved again
    assert again.examples == lab.examples
    third = Engine(config, model=tiny_model)
    Lab.open(third, AppLimits())
    assert third.store.stats().num_compiled == 0


def test_examples_come_back_after_an_operator_clear(lab):
    compiled = lab.engine.store.stats().num_compiled
    lab.libraries.clear_all()
    lab.engine.store._evicted.clear()  # forgotten too, as after many evictions
    assert lab.ensure_examples(lab.example_titles) == len(lab.example_titles)
    assert lab.engine.store.stats().num_compiled == compiled + len(lab.example_titles)
    assert compile_examples(lab.engine) == lab.examples


def test_example_request_fills_the_compose_tab(lab):
    presets = lab.presets
    preset, prefix, chunks, question, algorithms = compose.example_request(lab, ME)
    assert (preset, question, algorithms) == (presets.example_prefix, presets.example_question,
                                              presets.example_algorithms)
    assert prefix == presets.prefixes[preset]
    assert chunks == [k for name in presets.example_documents for k in lab.examples[name]]


def test_the_story_shows_reuse_across_prefixes_and_orders(lab):
    stories = list(start.play(lab, "Who chairs the board?"))
    result = stories[-1]
    assert len(stories) == len(result["requests"]) == 4
    names = [r["name"] for r in result["requests"]]
    assert names == ["R1: prefix 1, order 1", "R2: prefix 1, order 2",
                     "R3: prefix 2, order 1", "R4: prefix 2, order 2"]
    keys = start.story_requests(lab)[0][2]
    chunk_tokens = sum(lab.engine.store.peek(k).num_tokens for k in keys)
    for r in result["requests"]:
        pc, lego = r["runs"]["prefix_cache"], r["runs"]["legolink-16"]
        assert r["compiled"] == 0  # compiled once, before the story
        # LegoLink reuses every chunk token but the first 16 of each chunk after the first
        # (the prefix comes first, so every chunk is after something: all pay k).
        assert lego["tokens_reused"] == chunk_tokens - 16 * len(keys)
        assert pc["tokens_reused"] < r["prompt_tokens"] // 10  # no common prefix worth the name
    assert [r["hits"] for r in result["requests"]] == [len(keys) * i for i in range(1, 5)]
    table = start.story_table(result)
    assert list(table.columns) == start.TABLE_HEADERS and len(table) == 4
    summary = start.story_summary(result)
    assert "LegoLink answered" in summary
    same = sum(r["answer_match"] for r in result["requests"])
    assert f"LegoLink gave prefix_cache's exact answer in **{same} of 4** requests" in summary
    for r in result["requests"]:  # every request's two answers are shown
        name = r["name"].split(":")[0]
        assert summary.count(f"- {name}: prefix_cache “") == 1, name
    save_story(lab.engine, result)
    assert load_story(lab.engine) == json.loads(json.dumps(result))
