"""APE (`ape`): one shared position range for the chunks, temperature and scale merged by
log-sum-exp; its invariants on the tiny 4-layer model, fp32."""

from __future__ import annotations

import pytest
import torch

from engine.link import AlgorithmSpec, Kind
from engine.link.ape import ape_attention
from tests.engine.link.test_link import DOCS, PREFIX, QUESTION, _maxdiff, _spy

PLAIN = {"ape_temperature": 1.0, "ape_scale": 1.0}


@pytest.fixture()
def keys(tiny4_engine):
    return [tiny4_engine.compile(d) for d in DOCS]


def test_ape_takes_its_own_parameters():
    spec = AlgorithmSpec.of("ape")
    assert (spec.label, spec["ape_temperature"], spec["ape_scale"]) == ("ape", 0.9, 0.9)
    assert AlgorithmSpec.of("ape", ape_temperature=1.0)["ape_temperature"] == 1.0
    with pytest.raises(ValueError, match="ape_scale must be in"):
        AlgorithmSpec.of("ape", ape_scale=0.0)


def test_the_merge_equals_apes_two_softmax_lse_merge():
    """One softmax over shifted logits == APE's code: attention over the chunks at z/T and over
    the rest at z, merged with weights softmax([S·T·lse_C, lse_O])."""
    torch.manual_seed(0)
    heads, kv_heads, n, num_keys, d, t, s = 4, 2, 3, 11, 8, 0.8, 0.7
    q, k, v = torch.randn(heads, n, d), torch.randn(kv_heads, num_keys, d), torch.randn(
        kv_heads, num_keys, d)
    context = torch.zeros(num_keys, dtype=torch.bool)
    context[2:7] = True
    positions = torch.tensor([7, 9, 10])
    got = ape_attention(q, k, v, context, positions, t, s, d**-0.5)
    kk, vv = k.repeat_interleave(2, 0), v.repeat_interleave(2, 0)
    z = q @ kk.transpose(1, 2) * d**-0.5  # [heads, n, keys]
    visible = torch.arange(num_keys)[None] <= positions[:, None]
    c, o = visible & context, visible & ~context
    lse_c = torch.logsumexp((z / t).masked_fill(~c, -torch.inf), -1)
    lse_o = torch.logsumexp(z.masked_fill(~o, -torch.inf), -1)
    out_c = torch.softmax((z / t).masked_fill(~c, -torch.inf), -1) @ vv
    out_o = torch.softmax(z.masked_fill(~o, -torch.inf), -1) @ vv
    w = torch.softmax(torch.stack([s * t * lse_c, lse_o]), 0)[..., None]
    want = (w[0] * out_c + w[1] * out_o).transpose(0, 1)
    assert torch.allclose(got, want, atol=1e-5), "the single softmax must equal APE's merge"


def test_temperature_1_scale_1_one_chunk_equals_naive_linking(tiny4_engine, keys):
    """One chunk: APE's shared range is the chunk's own, so with T = S = 1 APE is naive
    linking of the same compile (legolink0), up to fp32 rounding (manual vs fused SDPA)."""
    naive = tiny4_engine.run(PREFIX, [keys[1]], QUESTION, "legolink0", max_new_tokens=8)
    r = tiny4_engine.run(PREFIX, [keys[1]], QUESTION, "ape", max_new_tokens=8, **PLAIN)
    assert r.mask == naive.mask, "APE recomputes no chunk position"
    assert _maxdiff(r, naive) <= 1e-4, "ape(T=1, S=1) must equal naive linking"
    assert r.token_ids == naive.token_ids, "decoding too (positions continue alike)"


def test_ape_computes_no_chunk_position_and_only_the_new_ones(tiny4_engine, keys, monkeypatch):
    tiny4_engine.run(PREFIX, keys, QUESTION, "ape", max_new_tokens=1)  # compiles the variant
    calls = _spy(monkeypatch, tiny4_engine.model)
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "ape", max_new_tokens=1)
    assert Kind.RECOMPUTED not in r.mask
    new = [i for i, m in enumerate(r.mask) if m == Kind.NEW]
    assert [p for p, _ in calls] == [new] and r.num_token_layers == len(new) * 4


@pytest.mark.parametrize("parameters", [PLAIN, {}])
def test_ape_does_not_depend_on_chunk_order(tiny4_engine, keys, parameters):
    """Every chunk sits at the same positions and the question after the longest: the chunks
    are a set to APE's attention, whatever their order (up to summation order)."""
    a = tiny4_engine.run(PREFIX, keys, QUESTION, "ape", max_new_tokens=6, **parameters)
    b = tiny4_engine.run(PREFIX, [keys[2], keys[0], keys[1]], QUESTION, "ape",
                         max_new_tokens=6, **parameters)
    assert _maxdiff(a, b) <= 1e-4 and a.token_ids == b.token_ids


def test_temperature_and_scale_change_the_answer_not_the_cache(tiny4_engine, keys):
    plain = tiny4_engine.run(PREFIX, keys, QUESTION, "ape", max_new_tokens=1, **PLAIN)
    ape = tiny4_engine.run(PREFIX, keys, QUESTION, "ape", max_new_tokens=1)
    assert ape.mask == plain.mask
    assert _maxdiff(ape, plain) > 1e-4, "T = S = 0.9 must change the attention"
    legolink0 = tiny4_engine.run(PREFIX, keys, QUESTION, "legolink0", max_new_tokens=1)
    assert _maxdiff(plain, legolink0) > 1e-4, "several chunks: APE's positions differ"
