"""The Redis tier under the chunk store: shared chunks, refused values, faults (one process).

Two engines on one model object stand for two replicas here: each has its own store and
reaches the other only through a real redis-server. tests/engine/store/test_redis_processes.py
does the same with separate processes.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from dataclasses import replace

import pytest
import torch

from engine import Engine
from engine.link.compile import compile_chunk
from engine.prompt import chunk_token_ids
from engine.store.codec import decode, encode
from tests.engine.redis_server import RedisServer, free_port

TEXTS = ["Rivers carry silt to their deltas, where it settles in fans.",
         "Mountain passes were trade routes long before roads.",
         "Paper money began as receipts for stored coins.",
         "Bees find flowers by scent, colour and the dances of others."]


def _replica(engine: Engine, url: str, prefetch: bool = False, **config) -> Engine:
    """Another replica: the same model, its own empty store, the shared Redis at `url`
    (without prefetching unless asked: these tests count what a request reads)."""
    replica = Engine(replace(engine.config, store_url=url, store_prefetch=prefetch, **config),
                     model=engine.model)
    replica.store.tier.retry_after_s = 0.05  # tests need not wait 2 s for a retry
    return replica


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _subscribed(server, replica: Engine) -> None:
    assert _wait_for(lambda: replica.store.tier.num_listeners() >= 1), (
        "the prefetcher never subscribed")


def test_a_running_replica_prefetches_what_another_compiles(tiny4_engine, redis_server):
    b = _replica(tiny4_engine, redis_server.url, prefetch=True)
    _subscribed(redis_server, b)  # before a compiles: a subscription is not retroactive
    a = _replica(tiny4_engine, redis_server.url)
    keys = [a.compile(t) for t in TEXTS]
    assert _wait_for(lambda: all(k in b.store for k in keys)), "b did not prefetch a's chunks"
    assert b.prefetcher.num_prefetched == 4 and b.store.stats().num_compiled == 0
    fetched = b.store.stats().num_fetched
    out_a = a.run("Sys.", keys[::-1], "Which?", "legolink", recompute_k=4, max_new_tokens=4)
    out_b = b.run("Sys.", keys[::-1], "Which?", "legolink", recompute_k=4, max_new_tokens=4)
    assert b.store.stats().num_fetched == fetched, "b's request read Redis: not a local hit"
    assert out_b.token_ids == out_a.token_ids and out_b.mask == out_a.mask
    for key in keys:
        assert _same(a.store.get(key), b.store.get(key))
    b.compile("A chunk of b's own, announced to every replica, b included.")
    assert b.prefetcher.num_prefetched == 4, "b's own compile is no prefetch"
    b.prefetcher.stop()


def test_a_prefetch_never_evicts(tiny4_engine, redis_server):
    marker_text = "The last chunk a compiles, which b has no room for either."
    sizes = [len(chunk_token_ids(tiny4_engine.tokenizer, t)) for t in [*TEXTS, marker_text]]
    assert max(sizes) < 1.5 * min(sizes)
    room = int(1.2 * max(sizes)) * tiny4_engine.store.format.bytes_per_token  # one chunk
    b = _replica(tiny4_engine, redis_server.url, prefetch=True, store_budget_bytes=room)
    own = b.compile(TEXTS[0])
    _subscribed(redis_server, b)
    a = _replica(tiny4_engine, redis_server.url)
    keys = [a.compile(t) for t in TEXTS[1:]]
    marker = a.compile(marker_text)
    assert _wait_for(lambda: b.prefetcher.num_prefetched > 0 or marker in b.store, 2.0) is False
    assert own in b.store, "a prefetch evicted the replica's own chunk"
    assert not any(k in b.store for k in keys) and b.prefetcher.num_prefetched == 0
    assert b.store.prefetch("not-a-key") is False, "published strings are checked as keys"
    b.prefetcher.stop()


def test_the_prefetcher_survives_a_redis_restart(tiny4_engine, redis_server):
    b = _replica(tiny4_engine, redis_server.url, prefetch=True)
    b.store.tier.retry_after_s = 0.1
    _subscribed(redis_server, b)
    redis_server.kill()
    redis_server.start()  # back, empty, on the same port: b must subscribe again by itself
    assert _wait_for(lambda: b.store.tier.num_listeners() == 1), (
        "the prefetcher did not subscribe again")
    a = _replica(tiny4_engine, redis_server.url)
    key = a.compile(TEXTS[0])
    assert _wait_for(lambda: key in b.store), "no prefetch after Redis came back"
    assert b.prefetcher._thread.is_alive()
    b.prefetcher.stop()
    assert _wait_for(lambda: not b.prefetcher._thread.is_alive(), 3.0), "stop() did not end it"


def _value_key(key: str) -> str:
    return f"epic-lab:chunk:{key}"


def _same(a, b) -> bool:
    return a.token_ids == b.token_ids and torch.equal(a.k, b.k) and torch.equal(a.v, b.v)


def test_a_chunk_compiled_by_one_replica_is_read_by_another(tiny4_engine, redis_server):
    a, b = _replica(tiny4_engine, redis_server.url), _replica(tiny4_engine, redis_server.url)
    keys = [a.compile(t, title=f"doc {i}") for i, t in enumerate(TEXTS)]
    out_a = a.run("Sys.", keys[::-1], "Which?", "legolink", recompute_k=4, max_new_tokens=6)
    out_b = b.run("Sys.", keys[::-1], "Which?", "legolink", recompute_k=4, max_new_tokens=6)
    stats = b.store.stats()
    assert stats.num_compiled == 0 and stats.num_fetched == 4, "B compiled instead of reading"
    assert out_b.token_ids == out_a.token_ids and out_b.mask == out_a.mask
    for key in keys:
        assert _same(a.store.get(key), b.store.get(key)), "K/V changed on the way through Redis"
        assert b.store.get(key).title == a.store.get(key).title
    assert stats.warning == "" and stats.shared_status.startswith("shared through redis://")
    assert stats.shared_budget_bytes == 256 * 1024**2 and stats.shared_bytes > 4 * 4000
    assert b.compile(TEXTS[0]) == keys[0] and b.store.stats().num_compiled == 0


def test_a_corrupted_value_is_refused_and_recompiled(tiny4_engine, redis_server):
    a, b = _replica(tiny4_engine, redis_server.url), _replica(tiny4_engine, redis_server.url)
    key = a.compile(TEXTS[0])
    client = redis_server.client()
    good = client.get(_value_key(key))
    bad = bytearray(good)
    bad[-5] ^= 0xFF  # one flipped bit of tensor data
    client.set(_value_key(key), bytes(bad))
    assert b.compile(TEXTS[0]) == key
    stats = b.store.stats()
    assert (stats.num_compiled, stats.num_refused, stats.num_fetched) == (1, 1, 0)
    assert _same(b.store.get(key), a.store.get(key))
    fixed = decode(client.get(_value_key(key)), b.store.format, b.store.max_chunk_tokens)
    assert _same(fixed, a.store.get(key)), "the recompiled chunk did not replace the bad one"
    client.set(_value_key(key), bytes(bad))
    c = _replica(tiny4_engine, redis_server.url)  # knows neither the chunk nor its token ids
    with pytest.raises(KeyError, match=r"refused \(checksum mismatch"):
        c.run("Sys.", [key], "Q?", "naive", max_new_tokens=2)
    assert len(c.store) == 0, "a refused value reached the store"


def _nan_chunk(engine: Engine, key: str):
    chunk = engine.store.get(key)
    k = chunk.k.clone()
    k[0, 0, 0, 0] = float("nan")
    return replace(chunk, k=k)


class Boom:
    def __reduce__(self):  # unpickling this would run a command
        return (os.system, ("touch /tmp/epic-lab-test-pwned",))


def _pickle_behind_a_header_length(e, key) -> bytes:
    data = pickle.dumps(Boom())
    return len(data).to_bytes(8, "little") + data


CRAFTED = {  # what is written under the key -> the reason B gives
    "garbage": (lambda e, key: b"\x80\x04not a chunk at all", "header of .* bytes, over"),
    "a pickle": (_pickle_behind_a_header_length, "not JSON"),
    "NaN values": (lambda e, key: encode(_nan_chunk(e, key), e.store.format), "non-finite"),
    "another chunk": (lambda e, key: encode(e.store.get(e.compile(TEXTS[1])), e.store.format),
                      "holds chunk"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_shared_values_are_refused(tiny4_engine, redis_server, case):
    make, reason = CRAFTED[case]
    a, b = _replica(tiny4_engine, redis_server.url), _replica(tiny4_engine, redis_server.url)
    key = a.compile(TEXTS[0])
    redis_server.client().set(_value_key(key), make(a, key))
    with pytest.raises(KeyError, match=reason):
        b.run("Sys.", [key], "Q?", "naive", max_new_tokens=2)
    assert len(b.store) == 0 and b.store.stats().num_refused == 1
    assert not os.path.exists("/tmp/epic-lab-test-pwned"), "a value was unpickled"
    assert b.compile(TEXTS[0]) == key and b.store.stats().num_compiled == 1, "not recompiled"


def test_a_request_reads_its_chunks_in_parallel_and_refuses_each_bad_one_once(tiny4_engine,
                                                                               redis_server):
    a, b = _replica(tiny4_engine, redis_server.url), _replica(tiny4_engine, redis_server.url)
    keys = [a.compile(t) for t in TEXTS]
    redis_server.client().set(_value_key(keys[2]), b"\x00" * 16)
    with pytest.raises(KeyError, match=f"chunk '{keys[2]}' is not in the store and the shared "
                                       "store's copy was refused"):
        b.run("Sys.", keys, "Q?", "naive", max_new_tokens=2)
    stats = b.store.stats()
    assert (stats.num_fetched, stats.num_refused) == (3, 1)
    assert sorted(c.key for c in stats.chunks) == sorted(keys[:2] + keys[3:])
    b.compile(TEXTS[2])  # its text is known: compiled and the bad value replaced
    c = _replica(tiny4_engine, redis_server.url)
    out = c.run("Sys.", keys, "Q?", "naive", max_new_tokens=2)
    assert c.store.stats().num_fetched == 4 and c.store.stats().num_compiled == 0
    assert out.token_ids == a.run("Sys.", keys, "Q?", "naive", max_new_tokens=2).token_ids


def test_another_models_value_is_refused(tiny4_engine, tiny_model_dir, redis_server):
    other = Engine(replace(tiny4_engine.config, model=str(tiny_model_dir),
                           store_url=redis_server.url))
    other_key = other.compile(TEXTS[0])
    a = _replica(tiny4_engine, redis_server.url)
    key = a.store.key_for(other.store.get(other_key).token_ids)
    assert key != other_key, "the model is part of the key"
    client = redis_server.client()
    client.set(_value_key(key), client.get(_value_key(other_key)))
    with pytest.raises(KeyError, match="compiled for another model"):
        a.run("Sys.", [key], "Q?", "naive", max_new_tokens=2)


def test_an_unreachable_redis_leaves_a_working_local_store(tiny4_engine, tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    a = _replica(tiny4_engine, url)
    start = time.monotonic()
    key = a.compile(TEXTS[0])
    out = a.run("Sys.", [key], "Q?", "naive", max_new_tokens=3)
    assert len(out.token_ids) == 3 and time.monotonic() - start < 5
    stats = a.store.stats()
    assert "unreachable" in stats.warning and url in stats.warning, stats.warning
    assert stats.num_compiled == 1 and stats.num_chunks == 1
    with pytest.raises(KeyError, match="the shared store is unreachable"):
        a.run("Sys.", ["0123456789abcdef" * 2], "Q?", "naive")


def test_redis_killed_during_a_request_then_back(tiny4_engine, redis_server, monkeypatch):
    a, b = _replica(tiny4_engine, redis_server.url), _replica(tiny4_engine, redis_server.url)
    keys = [a.compile(t) for t in TEXTS[:2]]
    expected = a.run("Sys.", keys, "Q?", "naive", max_new_tokens=4)
    tier = b.store.tier
    read, first_read = tier.get, threading.Event()

    def read_then_crash(key):  # Redis dies once B has read the first chunk of its request
        if key == keys[0]:
            data = read(key)
            first_read.set()
            return data
        first_read.wait(10)  # (B reads a request's chunks in parallel)
        redis_server.kill()
        return read(key)

    monkeypatch.setattr(tier, "get", read_then_crash)
    with pytest.raises(KeyError, match="the shared store is unreachable"):
        b.run("Sys.", keys, "Q?", "naive", max_new_tokens=4)
    monkeypatch.setattr(tier, "get", read)
    assert [c.key for c in b.store.stats().chunks] == keys[:1], "no partial chunk, none lost"
    assert _same(b.store.get(keys[0]), a.store.get(keys[0]))
    assert "unreachable" in b.store.stats().warning
    assert b.compile(TEXTS[1]) == keys[1]  # its text is known: compiled here, Redis down
    assert b.run("Sys.", keys, "Q?", "naive", max_new_tokens=4).token_ids == expected.token_ids

    redis_server.start()  # back, empty (no persistence), on the same port
    time.sleep(0.1)
    key = b.store.get_or_compile(list(range(5, 40)), "after the restart",
                                 lambda ids: compile_chunk(b.model, ids))
    assert b.store.stats().warning == "", "the warning stayed after Redis came back"
    client = redis_server.client()
    assert client.exists(_value_key(key)), "sharing did not resume"
    assert client.exists(_value_key(keys[1])), "the chunk compiled while down was not shared"
    for name in client.scan_iter("epic-lab:chunk:*"):  # both tiers agree on every value
        chunk = decode(client.get(name), b.store.format, b.store.max_chunk_tokens)
        assert _same(chunk, b.store.get(chunk.key))


def test_redis_killed_while_a_chunk_compiles(tiny4_engine, redis_server):
    a = _replica(tiny4_engine, redis_server.url)
    ids = list(range(10, 50))

    def compile_while_redis_dies(token_ids):  # after the lock was taken, before the write
        redis_server.kill()
        return compile_chunk(a.model, token_ids)

    key = a.store.get_or_compile(ids, "t", compile_while_redis_dies)
    assert key in a.store and a.store.stats().num_compiled == 1
    assert "unreachable" in a.store.stats().warning
    redis_server.start()
    time.sleep(0.1)
    b = _replica(tiny4_engine, redis_server.url)
    b.compile(TEXTS[2])  # any operation of B; A writes its unshared chunk on its next one
    a.compile(TEXTS[3])
    assert _same(b.store.fetch(key), a.store.get(key)), "the chunk never reached Redis"
    assert b.store.stats().num_compiled == 1


def test_a_redis_without_maxmemory_is_flagged(tiny4_engine, tmp_path):
    server = RedisServer(tmp_path, maxmemory="0").start()
    try:
        a = _replica(tiny4_engine, server.url)
        a.compile(TEXTS[0])
        assert "no maxmemory" in a.store.stats().warning
    finally:
        server.kill()


def test_store_url_is_checked_and_read_from_the_environment(monkeypatch):
    from engine.config import EngineConfig

    with pytest.raises(ValueError, match="store_url must start with one of redis://"):
        EngineConfig(device="cpu", store_url="http://127.0.0.1:6379")
    monkeypatch.setenv("EPIC_STORE_URL", "redis://127.0.0.1:6379/0")
    assert EngineConfig(device="cpu").store_url == "redis://127.0.0.1:6379/0"
    monkeypatch.delenv("EPIC_STORE_URL")
    assert EngineConfig(device="cpu").store_url == "", "unset means a local store only"
