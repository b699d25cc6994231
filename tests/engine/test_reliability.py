"""Bad requests get clear messages and change nothing; memory pressure; crash during save."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from engine import Engine, EngineConfig
from engine.link.compile import compile_chunk

DOCS = ["Tides rise twice a day along this stretch of coast.",
        "The bakery opens at six and sells out of rye by nine.",
        "Our choir sings in the old church every second Sunday."]


def _snapshot(engine: Engine):
    s = engine.store.stats()
    return s.num_compiled, [(c.key, c.num_tokens, c.hits) for c in s.chunks]


BAD_REQUESTS = [
    ({"question": ""}, "question is empty"),
    ({"question": "   "}, "question is empty"),
    ({"chunks": []}, "no chunks chosen"),
    ({"chunks": "abc"}, "must be a list of chunk keys"),
    ({"chunks": ["f" * 32] * 65}, "too many chunks: 65 given, at most 64 per request"),
    ({"chunks": ["f" * 32]}, "is not in the store"),
    ({"algorithm": "magic"}, "unknown algorithm 'magic'"),
    ({"recompute_k": -1}, "recompute_k must be an integer"),
    ({"recompute_k": 10**6}, "recompute_k must be an integer"),
    ({"recompute_k": 2.5}, "recompute_k must be an integer"),
    ({"recompute_ratio": -0.1}, "recompute_ratio must be in"),
    ({"recompute_ratio": 1.5}, "recompute_ratio must be in"),
    ({"max_new_tokens": 0}, "max_new_tokens must be an integer in"),
    ({"max_new_tokens": 10**6}, "max_new_tokens must be an integer in"),
    ({"prefix": None}, "prefix and question must be text"),
    ({"prefix": "word " * 3000}, "exceeds the context limit"),
]


@pytest.mark.parametrize("change, message", BAD_REQUESTS)
def test_bad_requests_are_refused_clearly_and_change_nothing(tiny4_engine, change, message):
    keys = [tiny4_engine.compile(d) for d in DOCS]
    request = {"prefix": "Sys.", "chunks": keys[:2], "question": "Q?", "algorithm": "legolink",
               "max_new_tokens": 4, **change}
    before = _snapshot(tiny4_engine)
    with pytest.raises((ValueError, KeyError), match=message):
        tiny4_engine.run(**request)
    assert _snapshot(tiny4_engine) == before, "a refused request changed the store"
    ok = tiny4_engine.run("Sys.", keys[:2], "Q?", "legolink", max_new_tokens=2)
    assert ok.num_prompt_tokens > 0, "the engine must keep working after a refusal"


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("  \n\t ", "empty"), (None, "empty"),
])
def test_bad_chunks_are_refused(tiny4_engine, text, message):
    with pytest.raises(ValueError, match=message):
        tiny4_engine.compile(text)
    assert tiny4_engine.store.stats().num_chunks == 0


def test_a_chunk_over_the_token_limit_is_refused(tiny4_model_dir, tmp_path):
    engine = Engine(EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                                 cache_dir=str(tmp_path), max_context_tokens=64))
    engine.compile("short")
    with pytest.raises(ValueError, match="over the limit of 64"):
        engine.compile("x" * 200)
    assert engine.store.stats().num_chunks == 1


def test_same_request_twice_is_deterministic(tiny4_engine):
    keys = [tiny4_engine.compile(d) for d in DOCS]
    for algorithm in ("full_recompute", "naive", "legolink", "cacheblend"):
        a = tiny4_engine.run("Sys.", keys, "Q?", algorithm, max_new_tokens=6)
        b = tiny4_engine.run("Sys.", keys, "Q?", algorithm, max_new_tokens=6)
        assert (a.token_ids, a.mask) == (b.token_ids, b.mask), algorithm


def test_memory_pressure_evicts_lru_and_recompiles_on_demand(tiny4_model_dir, tmp_path):
    probe = Engine(EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                                cache_dir=str(tmp_path)))
    texts = [f"Document number {i}: " + "words of filler text. " * 4 for i in range(12)]
    total = sum(probe.store.get(probe.compile(t)).num_bytes for t in texts)
    budget = total // 3  # compile three times the budget
    engine = Engine(EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                                 cache_dir=str(tmp_path), store_budget_bytes=budget))
    keys = []
    for t in texts:
        keys.append(engine.compile(t))
        assert engine.store.stats().num_bytes <= budget, "the store went over its budget"
    stats = engine.store.stats()
    evicted = [k for k, _ in stats.evicted]
    assert evicted == keys[: len(evicted)] and len(evicted) >= 7, "oldest first"
    assert [c.key for c in stats.chunks] == keys[len(evicted):]
    before = probe.run("Sys.", [keys[0]], "Q?", "naive", max_new_tokens=4)
    after = engine.run("Sys.", [keys[0]], "Q?", "naive", max_new_tokens=4)
    assert engine.store.stats().num_compiled == len(texts) + 1, "the evicted chunk recompiles"
    assert after.token_ids == before.token_ids
    assert keys[0] in engine.store and engine.store.stats().num_bytes <= budget


def test_pickle_files_are_never_loaded(tiny4_engine, tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "evil.safetensors").write_bytes(pickle.dumps(Boom()))
    loaded, warnings = tiny4_engine.store.load(tmp_path / "store")
    assert loaded == 0 and "evil.safetensors" in warnings[0]
    assert not (tmp_path / "pwned").exists(), "content from disk was executed"


SAVER = textwrap.dedent("""
    from engine import Engine, EngineConfig
    e = Engine(EngineConfig(model={model!r}, device="cpu", dtype="float32", cache_dir={cache!r}))
    for i in range(40):
        e.compile(f"Chunk {{i}}: " + "a longer sentence to give the file some size. " * 20)
    print("saving", flush=True)
    while True:
        e.store.save({store!r})
""")


@pytest.mark.slow
def test_killed_during_save_leaves_only_whole_chunks(tiny4_model_dir, tmp_path):
    store = tmp_path / "store"
    code = SAVER.format(model=str(tiny4_model_dir), cache=str(tmp_path),
                        store=str(store))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saving"
    time.sleep(0.3)  # mid-way through one of the saves
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    engine = Engine(EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                                 cache_dir=str(tmp_path)))
    loaded, warnings = engine.store.load(store)
    assert loaded >= 1 and warnings == [], f"partial chunk files were visible: {warnings}"
    for info in engine.store.stats().chunks:  # every loaded chunk is whole and correct
        chunk = engine.store.get(info.key)
        assert engine.store.key_for(chunk.token_ids) == info.key
        k, v = compile_chunk(engine.model, chunk.token_ids)
        assert torch.allclose(k, chunk.k, atol=1e-6) and torch.allclose(v, chunk.v, atol=1e-6)
