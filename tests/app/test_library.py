"""Library tab handlers on the tiny model: compile into a visitor's library, look at it, evict
and clear its chunks; the operator's store-wide actions; the per-call compile limits."""

from __future__ import annotations

import json

import gradio as gr
import pytest

from app import library, stores
from app.lab import Lab
from app.limits import AppLimits
from app.render import size_text
from tests.app.conftest import DOC_A, DOC_B

ME, OTHER, THIRD = "visitor-1", "visitor-2", "visitor-3"


def own_keys(lab: Lab, session: str = ME) -> set[str]:
    return set(lab.libraries.get(session).chunks)


def store_keys(lab: Lab) -> set[str]:
    return {c.key for c in lab.engine.store.stats().chunks}


def refused(call, message: str) -> str:
    with pytest.raises(gr.Error) as err:
        call()
    assert err.value.message.startswith(message), err.value.message
    return err.value.message


def test_compile_files_compiles_each_document_once(lab, write):
    uploads = [write("alder.txt", DOC_A), write("birch.md", DOC_B)]
    text, compiled = library.compile_files(lab, ME, uploads)
    assert text == ("Compiled **2** document(s) into **2** chunk(s): 2 new, "
                    "0 already in your library.")
    assert [c["title"] for c in compiled] == ["alder.txt", "birch.md"]
    assert {c["key"] for c in compiled} == own_keys(lab)
    assert [c["tokens"] for c in compiled] == [len(DOC_A) + 2, len(DOC_B) + 2]  # bytes + "\n\n"
    compiles = lab.engine.store.stats().num_compiled
    text, again = library.compile_files(lab, ME, uploads)  # found by content
    assert text.endswith("0 new, 2 already in your library.")
    assert [c["key"] for c in again] == [c["key"] for c in compiled]
    assert lab.engine.store.stats().num_compiled == compiles


def test_uploaded_files_leave_gradios_cache_once_read(lab, tmp_path, monkeypatch):
    """No disk left behind by an anonymous visitor but its chunks: Gradio's copy of an upload
    is deleted after it is read (files elsewhere are not the app's to delete)."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    upload = tmp_path / "gradio" / "0123abcd" / "alder.txt"
    upload.parent.mkdir(parents=True)
    upload.write_text(DOC_A)
    mine = tmp_path / "birch.md"
    mine.write_text(DOC_B)
    library.compile_files(lab, ME, [str(upload), str(mine)])
    assert not upload.exists() and mine.exists()
    refused(lambda: library.compile_files(lab, ME, [str(upload)]),
            "alder.txt: the uploaded file is gone: upload it again")


def test_compile_files_reads_the_dataset_schema(lab, write):
    row = {"id": "q7", "chunks": [DOC_A, DOC_B], "question": "?", "answers": ["x"]}
    _, compiled = library.compile_files(lab, ME, [write("data.jsonl", json.dumps(row) + "\n")])
    assert [c["title"] for c in compiled] == ["q7 #1", "q7 #2"]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.txt", b"", "empty.txt: the file is empty"),
    ("blob.txt", b"\x00\x01\x02binary", "blob.txt: looks binary"),
    ("bad.json", "{not json", "bad.json: not valid JSON"),
    ("bad.pdf", b"%PDF-1.4 garbage", "bad.pdf: not a readable PDF"),
    ("run.exe", b"MZ", "run.exe: unsupported file type .exe"),
])
def test_one_bad_file_refuses_the_upload_and_keeps_the_store(lab, write, name, content,
                                                              message):
    library.compile_files(lab, ME, [write("alder.txt", DOC_A)])
    before = lab.engine.store.stats()
    refused(lambda: library.compile_files(lab, ME, [write("birch.md", DOC_B),
                                                    write(name, content)]), message)
    after = lab.engine.store.stats()
    assert store_keys(lab) == {c.key for c in before.chunks}
    assert after.num_compiled == before.num_compiled
    assert len(own_keys(lab)) == 1


def test_compile_files_refuses_no_files_and_too_many(lab, write):
    refused(lambda: library.compile_files(lab, ME, []), "no files given")
    many = [write(f"d{i}.txt", f"document {i}") for i in range(lab.upload_limits.max_files + 1)]
    assert refused(lambda: library.compile_files(lab, ME, many), "21 files") == \
        "21 files given; at most 20 per upload"
    assert own_keys(lab) == set()


def test_titles_are_normalised_alike_on_every_path(lab, write):
    """Pasted titles lose control, zero-width and bidi characters as upload titles do."""
    _, compiled = library.compile_text(lab, ME, DOC_B, "")
    assert compiled[0]["title"] == "Birch Mills makes paper. It has ..."
    _, compiled = library.compile_text(lab, ME, DOC_A, "  Al\u200bder\u202e report\x07 ")
    assert compiled[0]["title"] == "Alder report"
    _, uploaded = library.compile_files(lab, ME, [write("Al\u200bder\u202e report.txt", DOC_A)])
    assert uploaded[0]["title"] == "Alder report.txt"
    refused(lambda: library.compile_text(lab, ME, "   ", "x"),
            "the text is empty: paste a document first")


def test_compile_budget_per_call_in_tokens_and_chunks(engine, write):
    """Limits bound work: a compile over the per-call token or chunk budget is refused before
    the model runs (issue 14: 150,000 characters held the model 65 s; 200,000 JSONL lines
    34.5 s)."""
    lab = Lab.open(engine, AppLimits(compile_tokens=100, compile_chunks=3))
    compiles = engine.store.stats().num_compiled
    refused(lambda: library.compile_text(lab, ME, "x" * 101),
            "101 tokens in one call is over this app's limit of 100 tokens per compile")
    lines = "\n".join(json.dumps({"title": f"t{i}", "text": f"line {i}"}) for i in range(4))
    refused(lambda: library.compile_files(lab, ME, [write("many.jsonl", lines)]),
            "4 documents in one call; at most 3 chunks may be compiled per call")
    assert engine.store.stats().num_compiled == compiles
    assert own_keys(lab) == set()


def test_a_visitor_may_fill_only_its_share_of_the_store(engine):
    per_token = engine.model.bytes_per_token
    lab = Lab.open(engine, AppLimits(session_share=0.25))
    examples = engine.store.budget_bytes - lab.libraries.room_bytes
    engine.store.budget_bytes = examples + 400 * per_token  # room for 400 tokens of visitors'
    lab.libraries.limits = AppLimits(session_share=100 * per_token / engine.store.budget_bytes,
                                     client_share=1.0)  # a share is 100 tokens
    library.compile_text(lab, ME, "a" * 60, "first")
    message = refused(lambda: library.compile_text(lab, ME, "b" * 60, "second"),
                      "your library would hold")
    assert f"over your share of {size_text(lab.libraries.share_bytes)}" in message
    library.compile_text(lab, OTHER, "b" * 60, "theirs")  # another visitor has its own share
    assert len(own_keys(lab)) == len(own_keys(lab, OTHER)) == 1


def test_each_visitor_sees_the_examples_and_its_own_chunks(lab):
    _, mine = library.compile_text(lab, ME, DOC_A, "mine")
    _, theirs = library.compile_text(lab, OTHER, DOC_B, "theirs")
    my_view = {key for _, key in library.chunk_choices(lab, ME)}
    assert my_view == set(lab.example_titles) | {mine[0]["key"]}
    assert theirs[0]["key"] not in my_view
    table = library.library_table(lab, ME)
    assert list(table.columns) == library.TABLE_HEADERS
    assert set(table["key"]) == my_view
    assert list(table[table["from"] == "you"]["title"]) == ["mine"]
    assert [key for _, key in library.own_choices(lab, ME)] == [mine[0]["key"]]


def test_the_same_text_is_stored_once_per_visitor_and_a_copy_of_anothers_is_new(lab):
    """Issue 19: "0 new, N already in the store" in 0.2 s told a visitor that someone had
    compiled a guessed text; another visitor's copy is now a compile like any other."""
    _, mine = library.compile_text(lab, ME, DOC_A, "my title")
    compiles = lab.engine.store.stats().num_compiled
    again, twice = library.compile_text(lab, ME, DOC_A, "my title")
    assert twice[0]["key"] == mine[0]["key"] and again.endswith("0 new, 1 already in your "
                                                                  "library.")
    assert lab.engine.store.stats().num_compiled == compiles, "a visitor's own text: deduped"
    fresh, _ = library.compile_text(lab, OTHER, DOC_B, "their title")
    copied, copy = library.compile_text(lab, THIRD, DOC_A, "their title")
    assert copied == fresh, "another visitor's copy reads as the fresh compile it is"
    assert lab.engine.store.stats().num_compiled == compiles + 2, "and is one"
    key = mine[0]["key"]
    assert copy[0]["key"] != key and key not in own_keys(lab, THIRD)
    assert lab.titles(ME)[key] == "my title"
    assert library.evict(lab, ME, key) == "Evicted my title."
    assert key not in lab.engine.store and copy[0]["key"] in lab.engine.store


def test_evict_and_clear_touch_only_the_visitors_own_chunks(lab):
    _, mine = library.compile_text(lab, ME, DOC_A, "alder")
    _, theirs = library.compile_text(lab, OTHER, DOC_B, "birch")
    refused(lambda: library.evict(lab, ME, theirs[0]["key"]),
            f"chunk {theirs[0]['key']!r} is not in your library")
    refused(lambda: library.evict(lab, ME, next(iter(lab.example_titles))),
            "the examples are shared by every visitor: they cannot be evicted")
    refused(lambda: library.evict(lab, ME, ""), "choose one of your chunks to evict")
    assert library.clear(lab, ME) == "Cleared your 1 chunk(s); the examples stay."
    assert theirs[0]["key"] in lab.engine.store and mine[0]["key"] not in lab.engine.store
    assert all(key in lab.engine.store for key in lab.example_titles)


def test_summary_counts_the_visitors_share_and_escapes_titles(lab):
    _, mine = library.compile_text(lab, ME, DOC_A, "<img src=http://x/a.png> [l](http://x)")
    lab.engine.store.evict(mine[0]["key"])  # the store's LRU, say
    summary = library.library_summary(lab, ME)
    used = size_text((len(DOC_A) + 2) * lab.engine.model.bytes_per_token)
    assert summary.startswith(f"**Your library:** 1 chunk(s) of yours + "
                              f"{len(lab.example_titles)} examples · yours take **{used}**")
    assert "<img" not in summary and "](" not in summary and "http:" not in summary
    assert "Evicted by the store" in summary and "&lt;img src=http&#58;" in summary


def test_releasing_a_session_drops_its_chunks(lab):
    _, mine = library.compile_text(lab, ME, DOC_A, "alder")
    lab.libraries.release(ME)
    assert mine[0]["key"] not in lab.engine.store
    assert all(key in lab.engine.store for key in lab.example_titles)


def test_store_wide_actions_are_for_the_operator_only(lab):
    library.compile_text(lab, ME, DOC_A, "alder")
    refused(lambda: stores.save_store(lab, ME, "mine"),
            "saving the store is for the operator of this app")
    refused(lambda: stores.load_store(lab, ME, "mine"),
            "loading a saved store is for the operator of this app")
    refused(lambda: stores.clear_store(lab, ME, "CLEAR"),
            "clearing the whole store is for the operator of this app")
    assert stores.saved_stores(lab) == [] and own_keys(lab)


def test_operator_saves_loads_and_clears_the_store(engine):
    lab = Lab.open(engine, AppLimits(operator=True))
    library.compile_text(lab, ME, DOC_A, "alder")
    library.compile_text(lab, OTHER, DOC_B, "birch")
    saved = store_keys(lab)
    assert stores.save_store(lab, ME, "mine") == f"Saved {len(saved)} chunk(s) to store 'mine'."
    assert stores.saved_stores(lab) == ["mine"]
    refused(lambda: stores.clear_store(lab, ME, "yes"), "type CLEAR to confirm")
    assert stores.clear_store(lab, ME, "CLEAR") == \
        f"Cleared {len(saved)} chunk(s) from the store (every visitor)."
    assert len(lab.engine.store) == 0 and own_keys(lab, OTHER) == set()
    assert stores.load_store(lab, ME, "mine") == \
        f"Loaded {len(saved)} new chunk(s) from store 'mine'."
    assert store_keys(lab) == saved and own_keys(lab) >= saved - set(lab.example_titles)
    refused(lambda: stores.load_store(lab, ME, "second"),
            "no saved store named 'second' (saved: mine)")


@pytest.mark.parametrize("name", ["../etc", "/tmp/x", "a/b", "", ".hidden", "x" * 65, None])
def test_store_names_are_never_paths(engine, name):
    lab = Lab.open(engine, AppLimits(operator=True))
    refused(lambda: stores.save_store(lab, ME, name),
            "a store name is 1-64 letters, digits, '-' or '_' (no paths)")


def test_chunk_choices_sorted_naturally(lab):
    for number in (10, 2, 1):
        library.compile_text(lab, ME, f"text {number}", f"Report #{number}")
    labels = [label for label, _ in library.own_choices(lab, ME)]
    assert [label.split(" · ")[0] for label in labels] == ["Report #1", "Report #2", "Report #10"]
    assert all(label.split(" · ")[1].endswith(" tok") for label in labels)


def test_evict_with_nothing_chosen_says_why(lab):
    from app.ui_library import ask_evict

    for key in (None, "", ["x"]):
        with pytest.raises(gr.Error, match="choose one of your own chunks to evict first"):
            ask_evict(lab, "s1", key)
    example = next(iter(lab.example_titles))
    with pytest.raises(gr.Error, match="only your own uploads can be evicted"):
        ask_evict(lab, "s1", example)
    key = library.compile_text(lab, "s1", "Alder Foods sells fruit.", "alder")[1][0]["key"]
    row, question = ask_evict(lab, "s1", key)
    assert row["visible"] and question == "Evict **alder** from your library?"
