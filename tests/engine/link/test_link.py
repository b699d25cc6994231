"""The link algorithms: the invariants of DESIGN §5 on a tiny 4-layer model, fp32."""

from __future__ import annotations

import pytest
import torch

from engine.link.base import Kind
from engine.runtime.model import Model

DOCS = [
    "The lighthouse keeper logged every passing ship in a green notebook.",
    "Marie planted tomatoes, basil and three rows of beans in the spring.",
    "The orchestra rehearsed the second movement until well after midnight.",
]
PREFIX, QUESTION = "You answer from the passages only.", "What did Marie plant?"


@pytest.fixture()
def keys(tiny4_engine):
    return [tiny4_engine.compile(d) for d in DOCS]


def _hf_last_logprobs(engine, result) -> torch.Tensor:
    ids = torch.tensor(result.layout.token_ids)[None]
    with torch.inference_mode():
        return torch.log_softmax(engine.model.hf_model(ids).logits[0, -1].float(), -1)


def _maxdiff(a, b) -> float:
    return (a.first_token_logprobs - b.first_token_logprobs).abs().max().item()


def test_full_recompute_equals_hf_forward(tiny4_engine, keys):
    r = tiny4_engine.run(PREFIX, [keys[2], keys[0]], QUESTION, "full_recompute", max_new_tokens=4)
    diff = (_hf_last_logprobs(tiny4_engine, r) - r.first_token_logprobs).abs().max().item()
    assert diff <= 1e-4, f"full_recompute differs from the HF forward by {diff}"


@pytest.mark.parametrize("algorithm, kwargs", [
    ("legolink", {"recompute_k": 1024}),
    ("cacheblend", {"recompute_ratio": 1.0}),
])
def test_degenerate_settings_equal_full_recompute(tiny4_engine, keys, algorithm, kwargs):
    order = [keys[1], keys[2], keys[0]]
    full = tiny4_engine.run(PREFIX, order, QUESTION, "full_recompute", max_new_tokens=8)
    r = tiny4_engine.run(PREFIX, order, QUESTION, algorithm, max_new_tokens=8, **kwargs)
    assert _maxdiff(r, full) <= 1e-4, f"{r.algorithm} should equal full_recompute"
    assert r.token_ids == full.token_ids, f"{r.algorithm}: greedy tokens differ"


def test_naive_single_chunk_at_position_zero_equals_full(tiny4_engine, keys):
    full = tiny4_engine.run("", [keys[0]], QUESTION, "full_recompute", max_new_tokens=8)
    naive = tiny4_engine.run("", [keys[0]], QUESTION, "naive", max_new_tokens=8)
    assert full.layout.chunks[0].start == 0, "the chunk must sit at position 0"
    assert _maxdiff(naive, full) <= 1e-4, "naive at position 0 must equal full_recompute"
    assert naive.token_ids == full.token_ids


def test_linking_with_a_prefix_is_not_free(tiny4_engine, keys):
    """Sanity: with a prefix and several chunks, naive and small-k LegoLink differ from full."""
    order = [keys[0], keys[1], keys[2]]
    full = tiny4_engine.run(PREFIX, order, QUESTION, "full_recompute", max_new_tokens=1)
    naive = tiny4_engine.run(PREFIX, order, QUESTION, "naive", max_new_tokens=1)
    assert _maxdiff(naive, full) > 1e-3, "naive linking cannot be exact across chunks"


def _spy(monkeypatch, model: Model) -> list[tuple[list[int], int]]:
    """Record (positions, number of layers) of every forward call."""
    calls: list[tuple[list[int], int]] = []
    original = Model.forward

    def forward(self, h, batch, kv, layers=None):
        n_layers = len(layers) if layers is not None else self.spec.num_layers
        calls.append((batch.positions.tolist(), n_layers))
        return original(self, h, batch, kv, layers=layers)

    monkeypatch.setattr(Model, "forward", forward)
    return calls


@pytest.mark.parametrize("algorithm, kwargs", [
    ("full_recompute", {}), ("naive", {}), ("legolink", {"recompute_k": 3}),
    ("cacheblend", {"recompute_ratio": 0.2}), ("cacheblend-key", {"recompute_ratio": 0.2}),
    ("prefix_cache", {}),
    ("querylink", {"recompute_k": 3}),
])
def test_reported_mask_is_exactly_what_was_computed(tiny4_engine, keys, monkeypatch,
                                                    algorithm, kwargs):
    calls = _spy(monkeypatch, tiny4_engine.model)
    r = tiny4_engine.run(PREFIX, [keys[2], keys[1]], QUESTION, algorithm, max_new_tokens=1,
                         **kwargs)
    final_positions = calls[-1][0]  # the pass that produced the logits
    computed = [i for i, m in enumerate(r.mask) if m != Kind.CACHED]
    assert final_positions == computed, f"{r.algorithm}: mask != positions of the final pass"
    assert r.num_recomputed == len(computed)
    work = sum(len(p) * n_layers for p, n_layers in calls)
    assert r.num_token_layers == work, f"{r.algorithm}: reported work != forward work"


@pytest.mark.parametrize("k", [0, 1, 5, 1000])
def test_legolink_recomputes_first_k_of_every_chunk_not_at_zero(tiny4_engine, keys, k):
    r = tiny4_engine.run(PREFIX, [keys[0], keys[2], keys[1]], QUESTION, "legolink",
                         recompute_k=k, max_new_tokens=1)
    chunks = r.layout.chunks
    num_new = r.num_prompt_tokens - sum(len(c.token_ids) for c in chunks)
    expected = sum(min(k, len(c.token_ids)) for c in chunks if c.start != 0) + num_new
    assert r.num_recomputed == expected, "recompute count != chunks x min(k, len) + new"
    for c in chunks:
        head = r.mask[c.start:c.start + min(k, len(c.token_ids))]
        assert all(m == Kind.RECOMPUTED for m in head), "a chunk's first k are not recomputed"
        assert all(m == Kind.CACHED for m in r.mask[c.start + min(k, len(c.token_ids)):c.end])


def test_cacheblend_recomputes_the_given_share(tiny4_engine, keys):
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "cacheblend", recompute_ratio=0.25,
                         max_new_tokens=1)
    num_cached = sum(1 for m in r.mask if m != Kind.NEW)
    num_re = sum(1 for m in r.mask if m == Kind.RECOMPUTED)
    assert num_re == int(num_cached * 0.25)


def test_reordering_changes_nothing_stored_and_nothing_naive_reuses(tiny4_engine, keys):
    before = tiny4_engine.store.stats()
    a = tiny4_engine.run(PREFIX, [keys[0], keys[1], keys[2]], QUESTION, "naive", max_new_tokens=2)
    b = tiny4_engine.run("Another prefix.", [keys[2], keys[0], keys[1]], QUESTION, "naive",
                         max_new_tokens=2)
    after = tiny4_engine.store.stats()
    assert after.num_compiled == before.num_compiled, "linking must not compile anything"
    assert [c.key for c in after.chunks if c.key in keys] != [], "chunks disappeared"
    assert sorted(c.key for c in after.chunks) == sorted(c.key for c in before.chunks)
    assert a.mask.count(Kind.CACHED) == b.mask.count(Kind.CACHED) == sum(
        len(c.token_ids) for c in a.layout.chunks), "naive must reuse every chunk token"
    hits = {c.key: c.hits for c in after.chunks}
    assert all(hits[k] == 2 for k in keys), "each request counts one hit per chunk"


def test_prefix_cache_reuses_only_a_common_token_prefix(tiny4_engine, keys):
    order = [keys[0], keys[1]]
    first = tiny4_engine.run(PREFIX, order, QUESTION, "prefix_cache", max_new_tokens=1)
    assert first.num_recomputed == first.num_prompt_tokens, "a first request reuses nothing"
    again = tiny4_engine.run(PREFIX, order, QUESTION, "prefix_cache", max_new_tokens=1)
    assert again.num_recomputed == 1, "the same request again reuses all but the last token"
    assert _maxdiff(again, first) <= 1e-4
    other = tiny4_engine.run("A different system prompt.", order, QUESTION, "prefix_cache",
                             max_new_tokens=1)
    common = 0
    for x, y in zip(other.layout.token_ids, first.layout.token_ids, strict=False):
        if x != y:
            break
        common += 1
    assert other.num_recomputed == other.num_prompt_tokens - common
    stats = {c.key: c.hits for c in tiny4_engine.store.stats().chunks}
    assert stats[keys[0]] == 0, "prefix_cache does not read chunk caches: no hits"


def test_the_same_chunk_twice_links(tiny4_engine, keys):
    r = tiny4_engine.run(PREFIX, [keys[1], keys[1]], QUESTION, "legolink", recompute_k=2,
                         max_new_tokens=2)
    first, second = r.layout.chunks
    assert first.token_ids == second.token_ids and second.start == first.end


def test_bos_tokenizer_keeps_bos_at_every_chunk_head(tmp_path):
    from engine import Engine, EngineConfig
    from tests.conftest import BOS, make_tiny_model
    d = make_tiny_model(tmp_path / "bos", add_bos=True, num_hidden_layers=4)
    engine = Engine(EngineConfig(model=str(d), device="cpu", dtype="float32",
                                 cache_dir=str(tmp_path / "c")))
    bos = engine.tokenizer.convert_tokens_to_ids(BOS)
    keys = [engine.compile(t) for t in DOCS[:2]]
    r = engine.run(PREFIX, keys, QUESTION, "legolink", recompute_k=1, max_new_tokens=1)
    assert r.layout.token_ids[0] == bos, "the raw prefix starts with BOS"
    for c in r.layout.chunks:
        assert c.token_ids[0] == bos, "each compiled chunk keeps its own BOS"
        assert r.mask[c.start] == Kind.RECOMPUTED, "k=1 recomputes exactly the chunk's BOS"
    full = engine.run(PREFIX, keys, QUESTION, "full_recompute", max_new_tokens=1)
    hf = _hf_last_logprobs(engine, full)
    assert (hf - full.first_token_logprobs).abs().max() <= 1e-4


def test_prefix_cache_keeps_copies_under_its_own_budget(tiny4_model_dir, tmp_path):
    from engine import Engine, EngineConfig
    probe = Engine(EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                                cache_dir=str(tmp_path)))
    keys = [probe.compile(d) for d in DOCS]
    first = probe.run(PREFIX, keys, QUESTION, "prefix_cache", max_new_tokens=4)
    one = first.num_prompt_tokens * probe.model.bytes_per_token
    assert probe.prefix_cache.stats().num_bytes == one, "a copy of the prompt positions only"
    engine = Engine(EngineConfig(model=str(tiny4_model_dir), device="cpu", dtype="float32",
                                 cache_dir=str(tmp_path), prefix_cache_budget_bytes=one + 1,
                                 prefix_cache_entries=8), model=probe.model)
    keys = [engine.compile(d) for d in DOCS]
    engine.run(PREFIX, keys, QUESTION, "prefix_cache", max_new_tokens=4)
    engine.run("Other.", keys, QUESTION, "prefix_cache", max_new_tokens=4)
    stats = engine.prefix_cache.stats()
    assert stats.num_entries == 1 and stats.num_bytes <= stats.budget_bytes, stats
    again = engine.run("Other.", keys, QUESTION, "prefix_cache", max_new_tokens=4)
    assert again.num_recomputed == 1, "the newest request is the one kept"


@pytest.mark.parametrize("algorithm", ["naive", "legolink-2"])
def test_chunks_rotate_the_same_by_layer_or_by_chunk(tiny4_engine, keys, monkeypatch, algorithm):
    """A GPU rotates the chunks' K one chunk at a time over all layers (kernel launches bound
    it), a CPU layer by layer (memory bounds it): the linked cache must not tell them apart."""
    import engine.link.base as base

    order = [keys[1], keys[2], keys[0], keys[1]]
    default = tiny4_engine.run(PREFIX, order, QUESTION, algorithm, max_new_tokens=6)
    rotate = base.rotate_chunks
    swapped: list[bool] = []

    def other_way(model, layout, chunks, kv, layer_by_layer):
        swapped.append(not layer_by_layer)
        rotate(model, layout, chunks, kv, not layer_by_layer)

    monkeypatch.setattr(base, "rotate_chunks", other_way)
    other = tiny4_engine.run(PREFIX, order, QUESTION, algorithm, max_new_tokens=6)
    assert swapped == [False], "the CPU path must rotate layer by layer, the swap chunk by chunk"
    assert torch.equal(other.first_token_logprobs, default.first_token_logprobs), (
        f"{algorithm}: rotating chunk by chunk changed the first token's log-probabilities")
    assert other.token_ids == default.token_ids, f"{algorithm}: the greedy answer changed"
