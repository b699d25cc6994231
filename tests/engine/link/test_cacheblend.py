"""CacheBlend by key deviation (`cacheblend-key-15`) beside the value deviation, tiny model."""

from __future__ import annotations

import pytest
import torch

from engine.link import AlgorithmSpec, Kind
from engine.runtime import Rope
from tests.engine.link.test_link import DOCS, PREFIX, QUESTION, _maxdiff


@pytest.fixture()
def keys(tiny4_engine):
    return [tiny4_engine.compile(d) for d in DOCS]


def test_key_label_parses_beside_the_value_label():
    key, value = AlgorithmSpec.parse("cacheblend-key-15"), AlgorithmSpec.parse("cacheblend-15")
    assert (key.name, key.variant, key["recompute_ratio"]) == ("cacheblend", "key", 0.15)
    assert key.label == "cacheblend-key-15" and value.label == "cacheblend-15"
    assert key != value, "the two deviations must be told apart"


def test_key_ratio_one_is_full_recompute(tiny4_engine, keys):
    order = [keys[1], keys[2], keys[0]]
    full = tiny4_engine.run(PREFIX, order, QUESTION, "full_recompute", max_new_tokens=8)
    r = tiny4_engine.run(PREFIX, order, QUESTION, "cacheblend-key-100", max_new_tokens=8)
    assert r.mask.count(Kind.CACHED) == 0, "ratio 1 recomputes every cached token"
    assert _maxdiff(r, full) <= 1e-4, "cacheblend-key-100 must equal full_recompute"
    assert r.token_ids == full.token_ids


def test_key_ratio_zero_is_naive(tiny4_engine, keys):
    order = [keys[2], keys[0], keys[1]]
    naive = tiny4_engine.run(PREFIX, order, QUESTION, "naive", max_new_tokens=4)
    r = tiny4_engine.run(PREFIX, order, QUESTION, "cacheblend-key-0", max_new_tokens=4)
    assert r.mask == naive.mask, "ratio 0 recomputes no cached token: naive's mask"
    # layer 0's K/V depend on the token alone: computing it again changes only rounding
    assert _maxdiff(r, naive) <= 1e-4, "cacheblend-key-0 must equal naive linking"


def test_key_recomputes_the_given_share_and_differs_from_value(tiny4_engine, keys):
    by_key = tiny4_engine.run(PREFIX, keys, QUESTION, "cacheblend-key-30", max_new_tokens=1)
    by_value = tiny4_engine.run(PREFIX, keys, QUESTION, "cacheblend-30", max_new_tokens=1)
    num_cached = sum(1 for m in by_key.mask if m != Kind.NEW)
    assert by_key.mask.count(Kind.RECOMPUTED) == int(num_cached * 0.3)
    assert by_key.mask.count(Kind.RECOMPUTED) == by_value.mask.count(Kind.RECOMPUTED)
    assert by_key.algorithm == "cacheblend-key-30" and by_value.algorithm == "cacheblend-30"


def test_key_deviation_before_rope_equals_after_rope():
    torch.manual_seed(0)
    head_dim, n = 16, 7
    rope = Rope({"rope_type": "default", "rope_theta": 10000.0}, head_dim, torch.device("cpu"))
    fresh, old = torch.randn(2, n, head_dim), torch.randn(2, n, head_dim)
    cos, sin = (t[10:10 + n] for t in rope.table(10 + n))
    before = (fresh - old).pow(2).sum(dim=(0, 2))
    after = (Rope.rotate(fresh, cos, sin) - Rope.rotate(old, cos, sin)).pow(2).sum(dim=(0, 2))
    assert torch.allclose(before, after, atol=1e-5), "RoPE is orthogonal per position"
