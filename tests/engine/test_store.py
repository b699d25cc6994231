"""ChunkStore: dedup, exact bytes, LRU under a budget, safetensors persistence, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from engine import Engine, EngineConfig

TEXTS = ["First chunk about rivers and their deltas.", "Second chunk, on mountain passes.",
         "Third chunk: the history of paper money.", "Fourth: how bees find flowers."]


def _engine(model_dir, tmp_path, **kw) -> Engine:
    return Engine(EngineConfig(model=str(model_dir), device="cpu", dtype="float32",
                               cache_dir=str(tmp_path / "cache"), **kw))


def test_same_text_is_stored_once(tiny4_engine):
    a = tiny4_engine.compile(TEXTS[0])
    b = tiny4_engine.compile(TEXTS[0] + "  \n")  # trailing whitespace is not content
    assert a == b
    stats = tiny4_engine.store.stats()
    assert stats.num_chunks == 1 and stats.num_compiled == 1


def test_key_does_not_depend_on_surroundings(tiny4_engine):
    """No prefix chain: the key is a function of the token ids alone."""
    key = tiny4_engine.compile(TEXTS[1])
    tiny4_engine.compile(TEXTS[2])
    assert tiny4_engine.store.key_for(tiny4_engine.store.get(key).token_ids) == key


def test_bytes_are_exact(tiny4_engine):
    key = tiny4_engine.compile(TEXTS[0])
    chunk = tiny4_engine.store.get(key)
    s = tiny4_engine.model.spec
    per_token = 2 * s.num_layers * s.num_kv_heads * s.head_dim * 4
    info = tiny4_engine.store.stats().chunks[0]
    assert info.num_bytes == chunk.num_tokens * per_token == chunk.k.nbytes + chunk.v.nbytes
    assert chunk.k.shape == (s.num_layers, s.num_kv_heads, chunk.num_tokens, s.head_dim)
    assert tiny4_engine.store.stats().bytes_per_token == per_token


def test_lru_eviction_under_budget(tiny4_model_dir, tmp_path):
    probe = _engine(tiny4_model_dir, tmp_path)
    sizes = [probe.store.get(probe.compile(t)).num_bytes for t in TEXTS[:3]]
    budget = sizes[0] + sizes[1] + sizes[2] - 1  # room for two of the three, not all
    engine = _engine(tiny4_model_dir, tmp_path, store_budget_bytes=budget)
    k0, k1 = engine.compile(TEXTS[0]), engine.compile(TEXTS[1])
    engine.store.get(k0)  # k0 is now the most recently used
    k2 = engine.compile(TEXTS[2])
    stats = engine.store.stats()
    assert [c.key for c in stats.chunks] == [k0, k2], "the least recently used (k1) goes first"
    assert stats.num_bytes <= budget
    assert stats.evicted[-1][0] == k1
    with pytest.raises(KeyError, match="was evicted"):
        engine.store.get(k1)


def test_a_chunk_over_the_budget_is_refused(tiny4_model_dir, tmp_path):
    engine = _engine(tiny4_model_dir, tmp_path, store_budget_bytes=1000)
    with pytest.raises(ValueError, match="over the store budget"):
        engine.compile(TEXTS[0])
    assert engine.store.stats().num_chunks == 0


def test_evict_and_clear(tiny4_engine):
    keys = [tiny4_engine.compile(t) for t in TEXTS[:3]]
    tiny4_engine.store.evict(keys[1])
    assert keys[1] not in tiny4_engine.store and keys[0] in tiny4_engine.store
    with pytest.raises(KeyError, match="not in the store"):
        tiny4_engine.store.evict("0" * 32)
    tiny4_engine.store.clear()
    assert tiny4_engine.store.stats().num_chunks == 0


def test_save_load_round_trip_is_bit_exact(tiny4_model_dir, tmp_path):
    a = _engine(tiny4_model_dir, tmp_path)
    keys = [a.compile(t, title=f"t{i}") for i, t in enumerate(TEXTS)]
    assert a.store.save(tmp_path / "store") == 4
    b = _engine(tiny4_model_dir, tmp_path)
    loaded, warnings = b.store.load(tmp_path / "store")
    assert (loaded, warnings) == (4, [])
    for key in keys:
        x, y = a.store.get(key), b.store.get(key)
        assert torch.equal(x.k, y.k) and torch.equal(x.v, y.v), "K/V changed on the round trip"
        assert x.token_ids == y.token_ids and x.title == y.title
    assert b.store.stats().num_compiled == 0, "loading compiles nothing"


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip a byte inside the tensor data
    path.write_bytes(bytes(data))


def test_interrupted_or_corrupted_files_are_skipped(tiny4_model_dir, tmp_path):
    a = _engine(tiny4_model_dir, tmp_path)
    keys = [a.compile(t) for t in TEXTS[:3]]
    store_dir = tmp_path / "store"
    a.store.save(store_dir)
    files = sorted(store_dir.glob("*.safetensors"))
    # An interrupted save: a half-written temporary file and a truncated chunk file.
    (store_dir / ".deadbeef.tmp").write_bytes(files[0].read_bytes()[:100])
    files[1].write_bytes(files[1].read_bytes()[:200])
    _corrupt(files[2])
    b = _engine(tiny4_model_dir, tmp_path)
    loaded, warnings = b.store.load(store_dir)
    assert loaded == 1 and len(warnings) == 2
    assert any("checksum mismatch" in w for w in warnings), warnings
    good = files[0].stem
    assert [c.key for c in b.store.stats().chunks] == [good] and good in keys


def test_other_models_files_are_refused(tiny4_model_dir, tmp_path):
    from tests.conftest import make_tiny_model
    a = _engine(tiny4_model_dir, tmp_path)
    a.compile(TEXTS[0])
    a.store.save(tmp_path / "store")
    other = _engine(make_tiny_model(tmp_path / "other", num_hidden_layers=4, seed=5), tmp_path)
    loaded, warnings = other.store.load(tmp_path / "store")
    assert loaded == 0 and "compiled for another model" in warnings[0]


def test_concurrent_compiles_of_one_text_store_one_chunk(tiny4_engine):
    keys, errors = [], []

    def work():
        try:
            keys.append(tiny4_engine.compile(TEXTS[3]))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(keys)) == 1 and len(keys) == 8
    stats = tiny4_engine.store.stats()
    assert stats.num_chunks == 1 and stats.num_compiled == 1, "compiled more than once"


def test_save_can_keep_only_some_chunks(tiny4_model_dir, tmp_path):
    a = _engine(tiny4_model_dir, tmp_path)
    keys = [a.compile(t) for t in TEXTS[:3]]
    assert a.store.save(tmp_path / "store", keys=[keys[0], keys[2], "f" * 32]) == 2
    b = _engine(tiny4_model_dir, tmp_path)
    assert b.store.load(tmp_path / "store") == (2, [])
    assert sorted(c.key for c in b.store.stats().chunks) == sorted([keys[0], keys[2]])
