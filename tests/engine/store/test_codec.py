"""The chunk byte format: exact round trips, and every malformed value refused with a reason."""

from __future__ import annotations

import pytest
import torch

from engine.store.chunk import ChunkFormat, ChunkKV
from engine.store.codec import ChunkRefused, decode, encode

FMT = ChunkFormat("tiny", torch.bfloat16, torch.device("cpu"), num_layers=2, num_kv_heads=2,
                  head_dim=8, vocab_size=100)


def _chunk(token_ids=(5, 6, 7, 8), title="A title") -> ChunkKV:
    shape = FMT.shape(len(token_ids))
    return ChunkKV(FMT.key_for(token_ids), title, tuple(token_ids),
                   torch.randn(shape).to(FMT.dtype), torch.randn(shape).to(FMT.dtype))


def test_round_trip_is_exact_in_the_engines_dtype():
    chunk = _chunk()
    back = decode(encode(chunk, FMT), FMT, max_tokens=16, key=chunk.key)
    assert back.k.dtype == back.v.dtype == torch.bfloat16
    assert torch.equal(back.k, chunk.k) and torch.equal(back.v, chunk.v)
    assert (back.key, back.title, back.token_ids) == (chunk.key, chunk.title, chunk.token_ids)


def test_every_truncation_is_refused():
    data = encode(_chunk(), FMT)
    for cut in (0, 4, 8, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(ChunkRefused):
            decode(data[:cut], FMT, max_tokens=16)


def test_a_value_under_another_key_is_refused():
    with pytest.raises(ChunkRefused, match=f"not '{'f' * 32}'"):
        decode(encode(_chunk(), FMT), FMT, max_tokens=16, key="f" * 32)


def test_limits_are_those_of_the_reader():
    data = encode(_chunk(token_ids=tuple(range(10))), FMT)
    with pytest.raises(ChunkRefused, match="10 tokens, over the limit of 9"):
        decode(data, FMT, max_tokens=9)
    small_vocab = ChunkFormat(**{**FMT.__dict__, "vocab_size": 8})
    with pytest.raises(ChunkRefused, match=r"outside the vocabulary \[0, 8\)"):
        decode(data, small_vocab, max_tokens=16)


def test_a_huge_header_is_refused_before_it_is_parsed():
    data = (10**12).to_bytes(8, "little") + b"{}"
    with pytest.raises(ChunkRefused, match="header of 1000000000000 bytes"):
        decode(data, FMT, max_tokens=16)


def test_a_salted_chunk_round_trips_and_its_salt_is_checked():
    ids = (5, 6, 7, 8)
    chunk = _chunk(ids)
    chunk.key, chunk.salt = FMT.key_for(ids, salt="owner-salt"), "owner-salt"
    back = decode(encode(chunk, FMT), FMT, max_tokens=16, key=chunk.key)
    assert (back.key, back.salt) == (chunk.key, "owner-salt")
    assert FMT.key_for(ids, salt="owner-salt") != FMT.key_for(ids), "a salt changes the key"
    chunk.salt = "another-salt"  # the key no longer matches its token ids and salt
    with pytest.raises(ChunkRefused, match="key does not match its token ids"):
        decode(encode(chunk, FMT), FMT, max_tokens=16)
    chunk.salt = "x" * 200
    with pytest.raises(ChunkRefused, match="salt is not text of at most 128 characters"):
        decode(encode(chunk, FMT), FMT, max_tokens=16)
