"""ChunkStore: dedup, exact bytes, LRU under a budget, safetensors persistence, threads."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

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


# Crafted store files (issue 14, item 6): whoever writes a file can also write a matching
# checksum and key, so each one below is consistent except for the one thing it gets wrong.

def _sha256(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _craft(engine: Engine, path: Path, token_ids=(1, 2, 3), dtype=torch.float32, fill=None,
           title="crafted", meta_dtype="float32") -> None:
    s = engine.model.spec
    shape = (s.num_layers, s.num_kv_heads, len(token_ids), s.head_dim)
    k = torch.randn(shape).to(dtype) if fill is None else torch.full(shape, fill).to(dtype)
    tensors = {"k": k, "v": torch.randn(shape).to(dtype),
               "token_ids": torch.tensor(token_ids, dtype=torch.int64)}
    key = engine.store.key_for(token_ids)
    save_file(tensors, str(path / f"{key}.safetensors"),
              metadata={"format": "epic-lab-chunk-v1", "key": key, "title": title,
                        "model_id": engine.model.model_id, "dtype": meta_dtype,
                        "sha256": _sha256(tensors)})


CRAFTED = {
    "fp16 tensors": ({"dtype": torch.float16}, "F16"),
    "int8 tensors": ({"dtype": torch.int8}, "I8"),
    "NaN values": ({"fill": float("nan")}, "non-finite"),
    "1e30 values": ({"fill": 1e30}, "out-of-range"),
    "out-of-vocabulary ids": ({"token_ids": (1, 2, 5000)}, "outside the vocabulary"),
    "negative ids": ({"token_ids": (1, -2)}, "outside the vocabulary"),
    "zero tokens": ({"token_ids": ()}, "zero tokens"),
    "too many tokens": ({"token_ids": (7,) * 4097}, "4097 tokens, over the limit of 4096"),
    "200 KB title": ({"title": "x" * 200_000}, "200000 characters"),
    "bidi title": ({"title": "invoice\u202egnp.exe"}, "bidi"),
    "another dtype": ({"dtype": torch.bfloat16, "meta_dtype": "bfloat16"}, "another model"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_store_files_are_refused_with_a_message(tiny4_engine, tmp_path, case):
    kwargs, reason = CRAFTED[case]
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    _craft(tiny4_engine, store_dir, **kwargs)
    good = _genuine_file(tiny4_engine, store_dir)
    loaded, warnings = tiny4_engine.store.load(store_dir)
    name = next(f.name for f in store_dir.glob("*.safetensors") if f.stem != good)
    assert loaded == 1 and len(warnings) == 1, (case, warnings)
    assert name in warnings[0] and reason in warnings[0], (case, warnings)
    assert [c.key for c in tiny4_engine.store.stats().chunks] == [good], "only the good file"
    out = tiny4_engine.run("Sys.", [good], "Q?", "naive", max_new_tokens=2)
    assert len(out.token_ids) == 2, "the store still serves requests"


def _genuine_file(engine: Engine, store_dir: Path) -> str:
    """Put one genuine chunk file next to the crafted one; -> its key."""
    other = Engine(engine.config, model=engine.model)
    key = other.compile(TEXTS[0])
    other.store.save(store_dir.parent / "genuine")
    shutil.copy(store_dir.parent / "genuine" / f"{key}.safetensors", store_dir)
    return key


def test_a_load_never_pushes_the_store_over_budget(tiny4_model_dir, tmp_path):
    a = _engine(tiny4_model_dir, tmp_path)
    keys = [a.compile(t) for t in TEXTS]
    a.store.save(tmp_path / "store")
    size = a.store.get(keys[0]).num_bytes
    b = _engine(tiny4_model_dir, tmp_path, store_budget_bytes=3 * size)
    mine = b.compile("A chunk this replica's user compiled before the load.")
    loaded, warnings = b.store.load(tmp_path / "store")
    stats = b.store.stats()
    assert stats.num_bytes <= stats.budget_bytes, "the load went over the budget"
    assert mine in b.store, "the load evicted a chunk already in use"
    assert loaded < 4 and len(warnings) == 1 and "budget" in warnings[0], warnings
    assert warnings[0].startswith("stopped at ") and ".safetensors" in warnings[0]


def test_concurrent_saves_to_one_directory_all_succeed(tiny4_engine, tmp_path):
    keys = [tiny4_engine.compile(t) for t in TEXTS]
    store_dir, errors = tmp_path / "store", []

    def save():
        try:
            for _ in range(10):
                tiny4_engine.store.save(store_dir)
        except Exception as e:  # surfaced below
            errors.append(repr(e))

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], f"concurrent saves collided: {errors[:2]}"
    assert sorted(f.stem for f in store_dir.glob("*.safetensors")) == sorted(keys)
    assert list(store_dir.glob("*.tmp")) + list(store_dir.glob(".*.tmp")) == []
    b = Engine(tiny4_engine.config, model=tiny4_engine.model)
    assert b.store.load(store_dir) == (4, [])


def test_stale_temporary_files_are_removed(tiny4_engine, tmp_path):
    key = tiny4_engine.compile(TEXTS[0])
    store_dir = tmp_path / "store"
    tiny4_engine.store.save(store_dir)
    dead = store_dir / f".{key}.safetensors.999999999.0123abcd.tmp"  # a pid no kernel hands out
    old = store_dir / ".deadbeef.tmp"  # no pid in its name, but an hour old
    live = store_dir / f".{key}.safetensors.{os.getpid()}.4567abcd.tmp"  # a save in progress
    for tmp in (dead, old, live):
        tmp.write_bytes(b"half a chunk")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    b = Engine(tiny4_engine.config, model=tiny4_engine.model)
    assert b.store.load(store_dir) == (1, [])
    assert not dead.exists() and not old.exists(), "a killed save's temporaries stayed"
    assert live.exists(), "a live save's temporary file was removed"
    old.write_bytes(b"again")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    tiny4_engine.store.save(store_dir)
    assert not old.exists(), "save does not clean up either"


def test_a_salt_keys_the_same_text_apart_and_survives_eviction(tiny4_engine):
    """Issue 19: one key per text told an owner whether anyone had compiled it; a salt (one
    per owner) makes the same text of two owners two chunks, of one owner one."""
    store = tiny4_engine.store
    plain, a = tiny4_engine.compile(TEXTS[0]), tiny4_engine.compile(TEXTS[0], salt="a")
    assert tiny4_engine.compile(TEXTS[0], salt="a") == a != plain
    b = tiny4_engine.compile(TEXTS[0], salt="b")
    assert len({plain, a, b}) == 3 and store.stats().num_compiled == 3
    assert store.key_for(store.get(a).token_ids, salt="a") == a and store.get(a).salt == "a"
    store.evict(a)
    tiny4_engine.run("p", [a], "q?", "naive", max_new_tokens=1)  # recompiled under its salt
    assert a in store and store.get(a).salt == "a" and store.stats().num_compiled == 4


def test_a_visitors_compile_variant_copies_take_its_salt(tiny4_engine):
    """Issues 19 and 21: LegoLink-0 compiles each chunk again behind its sink tokens; keyed by
    content and variant alone, that copy would tell one visitor (by a compile that did not
    happen) that another had linked the same text. It takes the chunk's own salt."""
    store = tiny4_engine.store
    first = {s: [tiny4_engine.compile(t, salt=s) for t in TEXTS[:2]] for s in ("a", "b")}
    before = store.stats().num_compiled
    for keys in first.values():
        tiny4_engine.run("p", keys, "q?", "legolink0", max_new_tokens=1)
    held = [store.peek(info.key) for info in store.stats().chunks]
    copies = [chunk for chunk in held if chunk.variant]
    assert store.stats().num_compiled - before == 4, "each visitor's two chunks compiled again"
    assert sorted(c.salt for c in copies) == ["a", "a", "b", "b"], "copies carry their salt"
    assert len({c.key for c in copies}) == 4, "the same text's copies of two visitors differ"
    for c in copies:
        assert store.key_for(c.token_ids, c.variant, c.salt) == c.key


def test_pinned_chunks_are_never_evicted_by_the_budget(tiny4_model_dir, tmp_path):
    probe = _engine(tiny4_model_dir, tmp_path)
    sizes = [probe.store.get(probe.compile(t)).num_bytes for t in TEXTS[:3]]
    engine = _engine(tiny4_model_dir, tmp_path, store_budget_bytes=sizes[0] + sizes[1])
    k0 = engine.compile(TEXTS[0])
    engine.store.pin(k0)
    k1, k2 = engine.compile(TEXTS[1]), engine.compile(TEXTS[2])
    assert k0 in engine.store, "the oldest chunk is pinned: the next oldest goes"
    assert k1 not in engine.store and k2 in engine.store
    engine.store.evict(k0)  # an explicit evict still drops it; the pin stays with the key
    engine.run("p", [k0], "q?", "naive", max_new_tokens=1)
    engine.compile(TEXTS[3])
    assert k0 in engine.store, "recompiled and pinned again"
    engine.store.pin(k0, False)
    engine.compile(TEXTS[1])
    assert k0 not in engine.store
