"""ProphetKV (`prophetkv-16`): the query-aware invariants (budget 0 = naive, a full budget =
full recompute, LegoLink's count, the mask = the final pass) and its own ranking rule."""

from __future__ import annotations

import pytest
import torch

from engine.link import AlgorithmSpec, Kind
from tests.engine.link.test_link import _spy
from tests.engine.link.test_querylink import DOCS, PREFIX, QUESTION, _maxdiff


@pytest.fixture()
def keys(tiny4_engine):
    return [tiny4_engine.compile(d) for d in DOCS]


def test_label():
    spec = AlgorithmSpec.parse("prophetkv-16")
    assert (spec.name, spec["recompute_k"], spec.label) == ("prophetkv", 16, "prophetkv-16")


def test_budget_zero_is_naive_and_a_full_budget_is_full_recompute(tiny4_engine, keys):
    naive = tiny4_engine.run(PREFIX, keys, QUESTION, "naive", max_new_tokens=6)
    zero = tiny4_engine.run(PREFIX, keys, QUESTION, "prophetkv-0", max_new_tokens=6)
    assert zero.mask == naive.mask and _maxdiff(zero, naive) <= 1e-4
    full = tiny4_engine.run(PREFIX, keys, QUESTION, "full_recompute", max_new_tokens=6)
    every = tiny4_engine.run(PREFIX, keys, QUESTION, "prophetkv-1024", max_new_tokens=6)
    assert _maxdiff(every, full) <= 1e-4 and every.token_ids == full.token_ids


@pytest.mark.parametrize("k", [2, 7])
def test_legolinks_count_and_the_mask_is_the_final_pass(tiny4_engine, keys, monkeypatch, k):
    lego = tiny4_engine.run(PREFIX, keys, QUESTION, "legolink", recompute_k=k, max_new_tokens=1)
    calls = _spy(monkeypatch, tiny4_engine.model)
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "prophetkv", recompute_k=k, max_new_tokens=1)
    assert r.mask.count(Kind.RECOMPUTED) == lego.mask.count(Kind.RECOMPUTED), "matched count"
    suffix = r.layout.segments[-1].start  # the prefix was finished by the probe (all layers)
    assert calls[-1][0] == [i for i, m in enumerate(r.mask)
                            if m == Kind.RECOMPUTED or i >= suffix], "the final pass's set"
    assert r.num_token_layers == sum(len(p) * layers for p, layers in calls)


def test_the_probe_runs_every_layer_and_scores_the_whole_suffix(tiny4_engine, keys,
                                                                 monkeypatch):
    calls = _spy(monkeypatch, tiny4_engine.model)
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "prophetkv-4", max_new_tokens=1)
    suffix = r.layout.segments[-1]
    scored = [p for p, _ in calls if p == list(range(suffix.start, suffix.end))]
    assert len(scored) == 4, "one scored call per layer, over every suffix row"
    assert torch.tensor(r.mask).eq(Kind.RECOMPUTED).sum() == 4 * len(r.layout.chunks)
