"""InfoFlow KV (`infoflow-16`): the invariants (budget 0 = LegoLink-0, a full budget = full
recompute, LegoLink's count on the linked layout), its ordering rule, and a reordered prompt
reported and measured as the prompt composed."""

from __future__ import annotations

import pytest
import torch

from engine.fidelity import measure
from engine.link import AlgorithmSpec, Kind, Layout, Segment
from engine.link.infoflow import density_order, reordered
from tests.engine.link.test_link import _spy
from tests.engine.link.test_querylink import DOCS, PREFIX, QUESTION, _maxdiff

MORE = [
    *DOCS,
    "A ferry crossed the bay twice a day in summer; in winter it ran only on market days, and "
    "the islanders stocked flour and lamp oil before the first storms of October.",
]


@pytest.fixture()
def keys(tiny4_engine):
    return [tiny4_engine.compile(d) for d in MORE]


def _layout(lengths: list[int]) -> Layout:
    segments, start, token = [], 0, 0
    for kind, n in [("prefix", 2), *(("chunk", n) for n in lengths), ("suffix", 3)]:
        ids = tuple(range(token, token + n))
        segments.append(Segment(kind, start, ids, key=f"k{token}" if kind == "chunk" else None))
        start, token = start + n, token + n
    return Layout(tuple(t for s in segments for t in s.token_ids), tuple(segments))


def test_label():
    spec = AlgorithmSpec.parse("infoflow-16")
    assert (spec.name, spec["recompute_k"], spec.label) == ("infoflow", 16, "infoflow-16")


def test_density_order_puts_the_densest_chunk_last_and_keeps_ties_in_order():
    layout = _layout([4, 4, 4])  # chunks at 2..5, 6..9, 10..13
    chosen = torch.zeros(layout.num_tokens, dtype=torch.bool)
    chosen[[2, 3, 4]] = True  # chunk 0: 3/4
    chosen[6] = True  # chunk 1: 1/4; chunk 2: 0
    assert density_order(layout, chosen) == [2, 1, 0], "ascending share, the densest last"
    assert density_order(layout, torch.zeros_like(chosen)) == [0, 1, 2], "ties: as composed"


def test_reordered_moves_whole_chunks_and_keeps_prefix_and_suffix():
    layout = _layout([3, 5, 2])
    moved = reordered(layout, [2, 0, 1])
    assert [s.kind for s in moved.segments] == [s.kind for s in layout.segments]
    assert [s.token_ids for s in moved.chunks] == [layout.chunks[i].token_ids for i in (2, 0, 1)]
    pairs = zip(moved.segments, moved.segments[1:], strict=False)
    assert all(b.start == a.end for a, b in pairs), "contiguous"
    assert moved.token_ids == tuple(t for s in moved.segments for t in s.token_ids)
    assert moved.order_in(layout) == (3, 1, 2) and moved.reordered_from(layout)
    assert layout.order_in(layout) == (1, 2, 3) and not layout.reordered_from(layout)


def test_budget_zero_is_legolink0_and_a_full_budget_is_full_recompute(tiny4_engine, keys):
    lego0 = tiny4_engine.run(PREFIX, keys, QUESTION, "legolink0", max_new_tokens=6)
    zero = tiny4_engine.run(PREFIX, keys, QUESTION, "infoflow-0", max_new_tokens=6)
    assert zero.mask == lego0.mask and _maxdiff(zero, lego0) <= 1e-5, "budget 0 = LegoLink-0"
    assert zero.layout == lego0.layout, "no budget: nothing scored, nothing reordered"
    full = tiny4_engine.run(PREFIX, keys, QUESTION, "full_recompute", max_new_tokens=6)
    every = tiny4_engine.run(PREFIX, keys, QUESTION, "infoflow-1024", max_new_tokens=6)
    assert _maxdiff(every, full) <= 1e-4 and every.token_ids == full.token_ids


@pytest.mark.parametrize("k", [2, 5, 9])
def test_legolinks_count_on_the_linked_layout_and_the_mask_is_the_final_pass(
        tiny4_engine, keys, monkeypatch, k):
    lego = tiny4_engine.run(PREFIX, keys, QUESTION, "legolink", recompute_k=k, max_new_tokens=1)
    tiny4_engine.compile_variants(tiny4_engine.request(  # compiled before the spy watches
        prefix=PREFIX, chunks=keys, question=QUESTION, algorithm="infoflow"))
    calls = _spy(monkeypatch, tiny4_engine.model)
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "infoflow", recompute_k=k, max_new_tokens=1)
    assert r.mask.count(Kind.RECOMPUTED) == lego.mask.count(Kind.RECOMPUTED), "matched count"
    suffix = r.layout.segments[-1].start
    assert calls[-1][0] == [i for i, m in enumerate(r.mask)
                            if m == Kind.RECOMPUTED or i >= suffix], "the final pass's set"
    assert r.num_token_layers == sum(len(p) * layers for p, layers in calls), "work counted"
    scored = [p for p, _ in calls if p == list(range(suffix, r.layout.num_tokens))]
    assert len(scored) == 2 * 4, "two scorings, each running the suffix through every layer"


def test_a_reordered_prompt_is_reported_in_its_order_and_measured_as_composed(tiny4_engine, keys):
    full = tiny4_engine.run(PREFIX, keys, QUESTION, "full_recompute", max_new_tokens=4)
    runs = [tiny4_engine.run(PREFIX, keys, QUESTION, "infoflow", recompute_k=k, max_new_tokens=4)
            for k in (2, 4, 6, 8)]
    moved = [r for r in runs if r.layout.reordered_from(full.layout)]
    assert moved, "on this prompt some budget reorders the chunks"
    for r in moved:
        order = r.layout.order_in(full.layout)
        assert sorted(order) == [1, 2, 3, 4] and order != (1, 2, 3, 4), order
        assert [s.token_ids for s in r.layout.chunks] == [
            full.layout.chunks[n - 1].token_ids for n in order], "the chunks as linked"
        assert r.layout.segments[0] == full.layout.segments[0], "the prefix stays first"
        fidelity = measure(r, full)  # against the prompt as composed
        assert fidelity.first_token_kl >= 0.0
    other = tiny4_engine.run(PREFIX, keys[:3], QUESTION, "naive", max_new_tokens=4)
    with pytest.raises(ValueError, match="same prompt tokens only"):
        measure(other, full)


def test_a_prompt_that_opens_with_a_chunk_is_never_reordered(tiny4_engine, keys):
    for k in (2, 4, 6, 8):
        r = tiny4_engine.run("", keys, QUESTION, "infoflow", recompute_k=k, max_new_tokens=1)
        full = tiny4_engine.run("", keys, QUESTION, "full_recompute", max_new_tokens=1)
        assert not r.layout.reordered_from(full.layout), "the chunk at 0 keeps its place"


def test_the_fixed_variant_selects_as_infoflow_but_keeps_the_order(tiny4_engine, keys):
    spec = AlgorithmSpec.parse("infoflow-fixed-16")
    assert (spec.name, spec.variant, spec.label) == ("infoflow", "fixed", "infoflow-fixed-16")
    full = tiny4_engine.run(PREFIX, keys, QUESTION, "full_recompute", max_new_tokens=1)
    for k in (2, 4, 6, 8):
        lego = tiny4_engine.run(PREFIX, keys, QUESTION, "legolink", recompute_k=k,
                                max_new_tokens=1)
        r = tiny4_engine.run(PREFIX, keys, QUESTION, "infoflow-fixed", recompute_k=k,
                             max_new_tokens=1)
        assert r.layout == full.layout, "the fixed variant links the prompt as composed"
        assert r.mask.count(Kind.RECOMPUTED) == lego.mask.count(Kind.RECOMPUTED)
