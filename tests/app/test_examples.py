"""The bundled example documents, presets and the one-click example request."""

from __future__ import annotations

from app.examples import compile_examples, example_documents, example_request, load_presets


def test_presets_and_documents_fit_together():
    presets = load_presets()
    documents = example_documents()
    assert len(documents) == 4
    assert set(presets.example_documents) == set(documents)
    assert presets.example_prefix in presets.prefixes
    assert presets.example_question in presets.questions
    for doc in documents.values():
        assert 200 <= len(doc.text.split()) <= 400
        assert not doc.title.startswith("#") and doc.title in doc.text


def test_examples_compile_once_and_come_back_after_eviction(engine):
    keys = compile_examples(engine)
    compiled = engine.store.stats().num_compiled
    assert compiled == sum(len(k) for k in keys.values())
    assert compile_examples(engine) == keys
    assert engine.store.stats().num_compiled == compiled
    presets = load_presets()
    first = keys[presets.example_documents[0]][0]
    engine.store.evict(first)
    prefix, chunks, question, algorithms = example_request(engine, presets)
    assert engine.store.stats().num_compiled == compiled + 1
    assert chunks == [k for name in presets.example_documents for k in keys[name]]
    assert prefix == presets.prefixes[presets.example_prefix]
    assert question == presets.example_question
    assert algorithms == presets.example_algorithms
