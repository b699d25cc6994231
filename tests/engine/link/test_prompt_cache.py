"""The prefix cache's entries: copies under a count and a byte budget, the memory of a leaving
entry reused for the next one (engine/link/prompt_cache.py)."""

from __future__ import annotations

import torch

from engine.link.prompt_cache import PrefixCache
from engine.runtime import KVBuffer


def prompt_kv(seed: int, n: int) -> KVBuffer:
    g = torch.Generator().manual_seed(seed)
    return KVBuffer(torch.randn(2, 1, n + 3, 4, generator=g),
                    torch.randn(2, 1, n + 3, 4, generator=g), n)


def ids(start: int, n: int) -> tuple[int, ...]:
    return tuple(range(start, start + n))


def test_a_leaving_entry_s_memory_takes_the_next_copy():
    cache = PrefixCache(max_entries=2, budget_bytes=1 << 20)
    for seed in range(2):
        cache.put(ids(100 * seed, 6), prompt_kv(seed, 6))
    oldest = cache.longest(ids(0, 6))[1]
    source = prompt_kv(7, 5)
    cache.put(ids(700, 5), source)
    assert cache.longest(ids(0, 6))[0] == 0, "the oldest entry left"
    reused, entry = cache.longest(ids(700, 5))
    assert reused == 5 and entry.num_keys == 5
    assert entry.k.data_ptr() == oldest.k.data_ptr(), "the leaving entry's memory was not reused"
    assert torch.equal(entry.k[:, :, :5], source.k[:, :, :5])
    assert torch.equal(entry.v[:, :, :5], source.v[:, :, :5])
    one = 2 * 2 * 6 * 4 * 4  # K and V of a 6-position entry: 2 layers, 1 head, head_dim 4
    assert cache.stats().num_bytes == 2 * one, "bytes held: both entries' capacity"


def test_a_longer_prompt_gets_fresh_memory_and_the_budget_holds():
    one = 2 * 2 * 6 * 4 * 4  # K and V of a 6-position entry
    cache = PrefixCache(max_entries=8, budget_bytes=one + 1)
    cache.put(ids(0, 6), prompt_kv(0, 6))
    first = cache.longest(ids(0, 6))[1]
    cache.put(ids(50, 6), prompt_kv(1, 6))  # over the budget: the first leaves, its memory reused
    assert cache.longest(ids(50, 6))[1].k.data_ptr() == first.k.data_ptr()
    cache.put(ids(90, 7), prompt_kv(2, 7))  # alone over the budget: not kept, nothing leaves
    assert cache.longest(ids(90, 7))[0] == 0 and cache.longest(ids(50, 6))[0] == 6
    assert cache.stats().num_bytes <= cache.budget_bytes

    cache = PrefixCache(max_entries=1, budget_bytes=1 << 20)
    cache.put(ids(0, 6), prompt_kv(0, 6))
    first = cache.longest(ids(0, 6))[1]
    source = prompt_kv(3, 7)
    cache.put(ids(90, 7), source)  # the leaving entry holds 6 positions: fresh memory
    entry = cache.longest(ids(90, 7))[1]
    assert entry.k.data_ptr() != first.k.data_ptr() and entry.capacity == 7
    assert torch.equal(entry.k, source.k[:, :, :7]) and torch.equal(entry.v, source.v[:, :, :7])


def test_a_request_reuses_only_entries_of_its_own_salt():
    """Issue 19: one visitor's tokens_reused told another visitor's prompt, token by token."""
    cache = PrefixCache(max_entries=4, budget_bytes=1 << 20)
    cache.put(ids(0, 6), prompt_kv(0, 6), "alice")
    assert cache.longest(ids(0, 6), "alice")[0] == 6
    assert cache.longest(ids(0, 6), "bob") == (0, None), "another salt's entry was reused"
    assert cache.longest(ids(0, 6)) == (0, None)
    cache.put(ids(0, 6), prompt_kv(1, 6), "bob")
    assert cache.stats("alice").num_entries == cache.stats("bob").num_entries == 1
    cache.clear("alice")
    assert cache.longest(ids(0, 6), "alice")[0] == 0 and cache.longest(ids(0, 6), "bob")[0] == 6
    assert cache.stats().num_entries == 1


def test_the_engine_keys_prefix_cache_by_the_requests_cache_salt(tiny4_engine):
    key = tiny4_engine.compile("A chunk about harbours and boats.")

    def reused(prefix: str, salt: str) -> int:
        result = tiny4_engine.run(prefix, [key], "Who?", "prefix_cache", max_new_tokens=1,
                                  cache_salt=salt)
        return sum(1 for m in result.mask if m == 1)

    secret = "The vault code is 4411, tell no one."
    assert reused(secret, "alice") == 0
    assert reused(secret, "bob") == reused("Nothing alike at all.", "carol") == 0
    assert reused(secret, "alice") > len(secret) // 2, "alice's own request is reused"
