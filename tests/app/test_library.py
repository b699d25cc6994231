"""Library tab handlers on the tiny model: upload, compile, inspect, evict, save and load."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from app import library
from tests.app.conftest import DOC_A, DOC_B


def keys_of(engine) -> set[str]:
    return {c.key for c in engine.store.stats().chunks}


def test_compile_files_compiles_each_document_once(engine, write):
    uploads = [write("alder.txt", DOC_A), write("birch.md", DOC_B)]
    text, compiled = library.compile_files(engine, uploads)
    assert text == ("Compiled **2** document(s) into **2** chunk(s): 2 new, "
                    "0 already in the store.")
    assert [c["title"] for c in compiled] == ["alder.txt", "birch.md"]
    assert {c["key"] for c in compiled} == keys_of(engine)
    assert [c["tokens"] for c in compiled] == [len(DOC_A) + 2, len(DOC_B) + 2]  # bytes + "\n\n"
    # The same files again: found by content, nothing recompiled.
    text, again = library.compile_files(engine, uploads)
    assert text.endswith("0 new, 2 already in the store.")
    assert [c["key"] for c in again] == [c["key"] for c in compiled]
    assert engine.store.stats().num_compiled == 2


def test_compile_files_reads_the_dataset_schema(engine, write):
    row = {"id": "q7", "chunks": [DOC_A, DOC_B], "question": "?", "answers": ["x"]}
    _, compiled = library.compile_files(engine, [write("data.jsonl", json.dumps(row) + "\n")])
    assert [c["title"] for c in compiled] == ["q7 #1", "q7 #2"]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.txt", b"", "empty.txt: the file is empty"),
    ("blob.txt", b"\x00\x01\x02binary", "blob.txt: looks binary"),
    ("bad.json", "{not json", "bad.json: not valid JSON"),
    ("bad.pdf", b"%PDF-1.4 garbage", "bad.pdf: not a readable PDF"),
    ("run.exe", b"MZ", "run.exe: unsupported file type .exe"),
])
def test_one_bad_file_refuses_the_upload_and_keeps_the_store(engine, write, name, content,
                                                              message):
    library.compile_files(engine, [write("alder.txt", DOC_A)])
    before = engine.store.stats()
    with pytest.raises(gr.Error) as err:
        library.compile_files(engine, [write("birch.md", DOC_B), write(name, content)])
    assert err.value.message.startswith(message)
    after = engine.store.stats()
    assert keys_of(engine) == {c.key for c in before.chunks}
    assert after.num_compiled == before.num_compiled == 1


def test_compile_files_refuses_no_files_and_too_many(engine, write):
    with pytest.raises(gr.Error) as err:
        library.compile_files(engine, [])
    assert err.value.message.startswith("no files given")
    many = [write(f"d{i}.txt", f"document {i}") for i in range(library.LIMITS.max_files + 1)]
    with pytest.raises(gr.Error) as err:
        library.compile_files(engine, many)
    assert err.value.message == "21 files given; at most 20 per upload"
    assert len(engine.store) == 0


def test_compile_text_titles_and_refusals(engine):
    _, compiled = library.compile_text(engine, DOC_B, "")
    assert compiled[0]["title"] == "Birch Mills makes paper. It has"
    _, compiled = library.compile_text(engine, DOC_A, "  Alder\nreport ")
    assert compiled[0]["title"] == "Alder report"
    with pytest.raises(gr.Error) as err:
        library.compile_text(engine, "   ", "x")
    assert err.value.message == "the text is empty: paste a document first"


def test_store_table_and_summary(engine):
    _, compiled = library.compile_text(engine, DOC_A, "alder")
    key = compiled[0]["key"]
    engine.store.get(key)  # one hit
    table = library.store_table(engine)
    assert list(table.columns) == library.TABLE_HEADERS
    row = table.iloc[0]
    assert (row["title"], row["key"], row["tokens"], row["device"], row["hits"]) == \
        ("alder", key, len(DOC_A) + 2, "cpu", 1)
    per_token = engine.model.bytes_per_token
    assert row["KV size"] == library.size_text((len(DOC_A) + 2) * per_token)
    summary = library.store_summary(engine)
    assert summary.startswith(f"**1** chunks · **{library.size_text((len(DOC_A) + 2) * per_token)}"
                              f"** of {library.size_text(engine.config.store_budget_bytes)}")
    assert "Recently evicted" not in summary
    assert "prefix_cache baseline: 0 earlier request(s) kept, 0 B of its own 512.0 MiB" in summary


def test_evict_and_clear(engine):
    _, a = library.compile_text(engine, DOC_A, "alder")
    library.compile_text(engine, DOC_B, "birch")
    assert library.evict(engine, a[0]["key"]) == "Evicted alder."
    assert "Recently evicted: alder" in library.store_summary(engine)
    with pytest.raises(gr.Error) as err:
        library.evict(engine, a[0]["key"])
    assert err.value.message == \
        f"chunk {a[0]['key']!r} was evicted from the store: compile it again"
    with pytest.raises(gr.Error) as err:
        library.evict(engine, "")
    assert err.value.message == "choose a chunk to evict"
    assert library.clear(engine) == "Cleared 1 chunk(s)."
    assert len(engine.store) == 0


def test_save_and_load_under_the_cache_dir(engine):
    library.compile_text(engine, DOC_A, "alder")
    library.compile_text(engine, DOC_B, "birch")
    saved = keys_of(engine)
    assert library.save_store(engine, "mine") == "Saved 2 chunk(s) to store 'mine'."
    assert library.saved_stores(engine) == ["mine"]
    assert library.store_dir(engine, "mine").parent.parent == \
        library.Path(engine.config.cache_dir)
    library.clear(engine)
    assert library.load_store(engine, "mine") == "Loaded 2 new chunk(s) from store 'mine'."
    assert keys_of(engine) == saved
    assert library.load_store(engine, "mine") == "Loaded 0 new chunk(s) from store 'mine'."


@pytest.mark.parametrize("name", ["../etc", "/tmp/x", "a/b", "", ".hidden", "x" * 65])
def test_store_names_are_never_paths(engine, name):
    with pytest.raises(gr.Error) as err:
        library.save_store(engine, name)
    assert err.value.message == "a store name is 1-64 letters, digits, '-' or '_' (no paths)"


def test_loading_an_unknown_store_names_the_saved_ones(engine):
    library.save_store(engine, "first")
    with pytest.raises(gr.Error) as err:
        library.load_store(engine, "second")
    assert err.value.message == "no saved store named 'second' (saved: first)"


def test_chunk_choices_sorted_naturally(engine):
    for number in (10, 2, 1):
        engine.compile(f"text {number}", f"Report #{number}")
    labels = [label for label, _ in library.chunk_choices(engine)]
    assert [label.split(" · ")[0] for label in labels] == ["Report #1", "Report #2", "Report #10"]
    assert all(label.split(" · ")[1].endswith(" tok") for label in labels)
