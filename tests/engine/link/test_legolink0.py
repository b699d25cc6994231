"""LegoLink-0 (`legolink0`) and its compile variant: chunks compiled behind 3 sacrificial sink
tokens, keyed apart from their plain compile, round trips through files and Redis."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from engine import Engine
from engine.link import AlgorithmSpec, Kind
from engine.runtime import Model
from engine.store import ChunkStore
from engine.store.codec import ChunkRefused, decode, encode
from tests.engine.link.test_link import DOCS, PREFIX, QUESTION, _maxdiff, _spy


@pytest.fixture()
def keys(tiny4_engine):
    return [tiny4_engine.compile(d) for d in DOCS]


def _variant_keys(engine: Engine, keys: list[str]) -> list[str]:
    return engine.compile_variants(engine.request(prefix=PREFIX, chunks=keys, question=QUESTION,
                                                  algorithm="legolink0"))


def _same(a, b) -> bool:
    return (a.key, a.token_ids, a.variant) == (b.key, b.token_ids, b.variant) and all(
        torch.equal(x, y) for x, y in ((a.k, b.k), (a.v, b.v)))


def test_legolink0_is_a_name_and_legolink_0_is_naive_legolink():
    zero, legolink = AlgorithmSpec.parse("legolink0"), AlgorithmSpec.parse("legolink-0")
    assert (zero.name, zero.variant, zero.values, zero.label) == ("legolink0", "", (), "legolink0")
    assert (legolink.name, legolink["recompute_k"], legolink.label) == ("legolink", 0, "legolink-0")
    with pytest.raises(ValueError, match="legolink0 takes no parameter"):
        AlgorithmSpec.parse("legolink0-4")


def test_no_chunk_position_is_computed_at_link_time(tiny4_engine, keys, monkeypatch):
    _variant_keys(tiny4_engine, keys)  # compiled before the spy: only the link is watched
    naive = tiny4_engine.run(PREFIX, keys, QUESTION, "naive", max_new_tokens=1)
    calls = _spy(monkeypatch, tiny4_engine.model)
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "legolink0", max_new_tokens=1)
    assert Kind.RECOMPUTED not in r.mask, "legolink0 must recompute no chunk position"
    assert r.mask == naive.mask and r.num_token_layers == naive.num_token_layers
    new = [i for i, m in enumerate(r.mask) if m == Kind.NEW]
    assert [positions for positions, _ in calls] == [new], "one pass, over the new positions"
    assert _maxdiff(r, naive) > 1e-4, "the sink-free compile must change what is linked"


def test_the_variant_is_compiled_on_demand_once_and_kept_apart(tiny4_engine, keys):
    before = tiny4_engine.store.stats().num_compiled
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "legolink0", max_new_tokens=1)
    assert tiny4_engine.store.stats().num_compiled == before + 3, "one compile per chunk"
    assert r.timings_ms["variant_compile_ms"] > 0
    tiny4_engine.run(PREFIX, keys[::-1], QUESTION, "legolink0", max_new_tokens=1)
    assert tiny4_engine.store.stats().num_compiled == before + 3, "the variant is reused"
    variant_keys = _variant_keys(tiny4_engine, keys)
    assert set(variant_keys).isdisjoint(keys), "a variant never shares its plain chunk's key"
    for key, plain in zip(variant_keys, keys, strict=True):
        chunk, original = tiny4_engine.store.peek(key), tiny4_engine.store.peek(plain)
        assert (chunk.variant, original.variant) == ("sink3", "")
        assert chunk.token_ids == original.token_ids and chunk.k.shape == original.k.shape
        assert tiny4_engine.store.key_for(chunk.token_ids, "sink3") == key
    with pytest.raises(ValueError, match="is a compile variant's"):
        tiny4_engine.run(PREFIX, variant_keys, QUESTION, "naive", max_new_tokens=1)


def test_the_variant_is_rows_3_on_of_a_forward_behind_three_sinks(tiny4_engine, keys):
    model: Model = tiny4_engine.model
    chunk = tiny4_engine.store.peek(_variant_keys(tiny4_engine, keys)[1])
    sink = model.tokenizer.bos_token_id if model.tokenizer.bos_token_id is not None else (
        model.tokenizer.eos_token_id)
    ids = torch.tensor([[sink] * 3 + list(chunk.token_ids)])
    with torch.inference_mode():
        cache = model.hf_model(ids, use_cache=True).past_key_values
    cos, sin = (t[3:ids.shape[1]] for t in model.rope.table(ids.shape[1]))
    for i, layer in enumerate(cache.layers):
        hf_k, hf_v = layer.keys[0, :, 3:], layer.values[0, :, 3:]  # HF's K is after RoPE
        assert torch.allclose(model.rope.rotate(chunk.k[i], cos, sin), hf_k, atol=1e-4), i
        assert torch.allclose(chunk.v[i], hf_v, atol=1e-4), f"layer {i}: V differs from HF"


def test_a_chunk_opening_the_prompt_keeps_its_plain_compile(tiny4_engine, keys):
    full = tiny4_engine.run("", [keys[0]], QUESTION, "full_recompute", max_new_tokens=8)
    r = tiny4_engine.run("", [keys[0]], QUESTION, "legolink0", max_new_tokens=8)
    assert r.layout.chunks[0].start == 0
    assert _maxdiff(r, full) <= 1e-4 and r.token_ids == full.token_ids


def test_both_variants_round_trip_through_files(tiny4_engine, keys, tmp_path):
    variant_keys = _variant_keys(tiny4_engine, keys)
    store = tiny4_engine.store
    assert store.save(tmp_path / "saved", keys + variant_keys) == 6
    other = ChunkStore(store.format, store.budget_bytes, store.max_chunk_tokens)
    assert other.load(tmp_path / "saved") == (6, [])
    for key in keys + variant_keys:
        assert _same(other.peek(key), store.peek(key)), "a chunk changed on disk"


def test_the_codec_refuses_a_variant_that_does_not_match_the_key(tiny4_engine, keys):
    store = tiny4_engine.store
    chunk = store.peek(_variant_keys(tiny4_engine, keys)[0])
    data = encode(chunk, store.format)
    assert _same(decode(data, store.format, store.max_chunk_tokens, chunk.key), chunk)
    for variant, error in (("", "does not match"), ("sink4", "does not match"),
                           ("Sink 3!", "not a variant name")):
        relabelled = replace(chunk, variant=variant)
        with pytest.raises(ChunkRefused, match=error):
            decode(encode(relabelled, store.format), store.format, store.max_chunk_tokens)


def test_both_variants_round_trip_through_redis(tiny4_engine, redis_server):
    a, b = (Engine(replace(tiny4_engine.config, store_url=redis_server.url,
                           store_prefetch=False), model=tiny4_engine.model) for _ in range(2))
    keys = [a.compile(d, title=f"doc {i}") for i, d in enumerate(DOCS)]
    out_a = a.run(PREFIX, keys, QUESTION, "legolink0", max_new_tokens=4)
    compiled = b.store.stats().num_compiled
    out_b = b.run(PREFIX, keys, QUESTION, "legolink0", max_new_tokens=4)
    assert b.store.stats().num_compiled == compiled == 0, "b compiled instead of reading"
    assert out_b.token_ids == out_a.token_ids and out_b.mask == out_a.mask
    for key in keys + _variant_keys(a, keys):
        assert _same(b.store.peek(key), a.store.peek(key)), "changed on the way through Redis"
