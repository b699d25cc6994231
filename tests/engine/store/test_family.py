"""A chunk's variant copies (LegoLink-0's and APE's sink-free compile) belong to it: counted
with it, pinned with it, dropped with it, released with it from memory, the eviction records,
the files and the shared tier (engine/store/family.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine import Engine, EngineConfig
from engine.store import ChunkStore

TEXTS = ["First chunk about rivers and their deltas.", "Second chunk, on mountain passes.",
         "Third chunk: the history of paper money.", "Fourth: how bees find flowers."]


def _copies(engine: Engine, keys: list[str], salt: str = "") -> list[str]:
    """The legolink0 copies of `keys` (all behind a prefix, so each chunk gets one)."""
    copies = engine.compile_variants(engine.request(prefix="p", chunks=keys, question="q?",
                                                    algorithm="legolink0"))
    assert all(engine.store.peek(c).variant == "sink3" for c in copies), "not copies"
    assert [engine.store.key_for(engine.store.peek(k).token_ids, "sink3", salt)
            for k in keys] == copies, "a copy is keyed by its chunk's ids and salt"
    return copies


def _held_bytes(store: ChunkStore) -> int:
    return sum(store.peek(info.key).num_bytes for info in store.stats().chunks)


def test_a_copy_counts_with_its_chunk_and_goes_with_it(tiny4_engine):
    store = tiny4_engine.store
    keys = [tiny4_engine.compile(t, salt="a") for t in TEXTS[:2]]
    assert [store.variant_bytes(k) for k in keys] == [0, 0]
    copies = _copies(tiny4_engine, keys, "a")
    for key, copy in zip(keys, copies, strict=True):
        assert store.variant_bytes(key) == store.peek(copy).num_bytes == store.peek(key).num_bytes
    stats = store.stats()
    assert stats.num_bytes == _held_bytes(store) == 2 * sum(
        store.peek(k).num_bytes for k in keys), "the store's bytes are not exact"
    assert sorted(info.variant for info in stats.chunks) == ["", "", "sink3", "sink3"]
    store.evict(keys[0])
    assert keys[0] not in store and copies[0] not in store, "the copy outlived its chunk"
    assert keys[1] in store and copies[1] in store, "another chunk's copy went too"
    assert store.stats().num_bytes == _held_bytes(store) == 2 * store.peek(keys[1]).num_bytes
    tiny4_engine.run("p", keys, "q?", "legolink0", max_new_tokens=1)  # both come back
    assert copies[0] in store and store.variant_bytes(keys[0]) > 0


def test_a_pinned_chunk_pins_its_copies(tiny4_model_dir, tmp_path):
    config = EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                          cache_dir=str(tmp_path / "cache"))
    probe = Engine(config)
    size = probe.store.peek(probe.compile(TEXTS[0], salt="a")).num_bytes
    engine = Engine(replace(config, store_budget_bytes=3 * size + size // 2), model=probe.model)
    key = engine.compile(TEXTS[0], salt="a")
    engine.store.pin(key)
    copy = _copies(engine, [key], "a")[0]
    for text in TEXTS[1:]:  # each pushes the oldest unpinned chunk out
        engine.compile(text)
    assert key in engine.store and copy in engine.store, "the budget evicted a pinned family"
    assert engine.store.stats().num_bytes <= engine.store.budget_bytes
    engine.store.pin(key, False)
    engine.compile(f"{TEXTS[0]} {TEXTS[2]}")  # about two chunks' worth: the oldest goes
    assert key not in engine.store and copy not in engine.store


def test_a_copy_refused_by_its_owner_is_neither_compiled_nor_stored(tiny4_engine):
    store = tiny4_engine.store
    keys = [tiny4_engine.compile(t, salt="a") for t in TEXTS[:2]]
    asked = []

    def refuse(parent: str, variant: str, salt: str, num_bytes: int) -> None:
        asked.append((parent, variant, salt, num_bytes))
        raise ValueError("over your share")

    store.check_variant = refuse
    before = store.stats()
    with pytest.raises(ValueError, match="over your share"):
        tiny4_engine.run("p", keys, "q?", "legolink0", max_new_tokens=1)
    assert asked == [(keys[0], "sink3", "a", store.peek(keys[0]).num_bytes)]
    after = store.stats()
    assert (after.num_compiled, after.num_bytes, after.num_chunks) == (
        before.num_compiled, before.num_bytes, before.num_chunks), "a refused copy was kept"


def test_release_forgets_a_chunk_and_its_copies_and_leaves_others(tiny4_engine, tmp_path):
    store = tiny4_engine.store
    mine = [tiny4_engine.compile(t, salt="a") for t in TEXTS[:2]]
    theirs = [tiny4_engine.compile(t, salt="b") for t in TEXTS[:2]]
    my_copies, their_copies = _copies(tiny4_engine, mine, "a"), _copies(tiny4_engine, theirs, "b")
    store.evict(mine[1])  # evicted (and its copy with it): a release forgets the records too
    for key in mine:
        store.release(key)
    for key in mine + my_copies:
        assert key not in store, "released but still held"
        with pytest.raises(KeyError, match="is not in the store"):  # not "was evicted"
            store.tokens(key)
        assert store.evicted_token_ids(key) is None
    assert all(k in store for k in theirs + their_copies), "another owner's chunks went"
    assert store.stats().num_bytes == _held_bytes(store)
    assert store.save(tmp_path / "saved") == 4
    assert sorted(f.stem for f in (tmp_path / "saved").glob("*.safetensors")) == sorted(
        theirs + their_copies), "the files tier holds something released"


def test_copies_round_trip_through_files_as_a_family(tiny4_engine, tmp_path):
    store = tiny4_engine.store
    keys = [tiny4_engine.compile(t, salt="a") for t in TEXTS[:2]]
    copies = _copies(tiny4_engine, keys, "a")
    assert store.save(tmp_path / "saved") == 4
    other = ChunkStore(store.format, store.budget_bytes, store.max_chunk_tokens)
    assert other.load(tmp_path / "saved") == (4, [])
    assert [other.variant_bytes(k) for k in keys] == [store.variant_bytes(k) for k in keys]
    other.evict(keys[0])
    assert copies[0] not in other and copies[1] in other


def test_release_deletes_a_salted_family_from_redis_only(tiny4_engine, redis_server):
    """The shared tier held a released visitor's chunks and copies until Redis's own
    eviction; a salted key is its owner's alone (no other visitor or replica can name it)."""
    engine = Engine(replace(tiny4_engine.config, store_url=redis_server.url,
                            store_prefetch=False), model=tiny4_engine.model)
    mine = [engine.compile(t, salt="a") for t in TEXTS[:2]]
    plain = [engine.compile(t) for t in TEXTS[:2]]  # unsalted: anyone's, kept
    my_copies, plain_copies = _copies(engine, mine, "a"), _copies(engine, plain)

    def shared(key: str) -> bool:
        return engine.store.tier.get(key) is not None

    assert all(map(shared, mine + my_copies + plain + plain_copies)), "not written to Redis"
    for key in mine + plain:
        engine.store.release(key)
    assert not any(map(shared, mine + my_copies)), "a released salted family stayed in Redis"
    assert all(map(shared, plain + plain_copies)), "an unsalted chunk left the shared tier"
