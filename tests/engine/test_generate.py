"""Decoding: streaming adds up, greedy is deterministic, sampling is seeded, limits hold."""

from __future__ import annotations

import pytest

DOC = "Ada kept bees on the roof of the old library, and sold the honey in June."


@pytest.fixture()
def key(tiny4_engine):
    return tiny4_engine.compile(DOC)


def test_stream_pieces_add_up_to_the_result(tiny4_engine, key):
    pieces = list(tiny4_engine.stream("Sys.", [key], "Who?", "legolink", max_new_tokens=12))
    result = pieces[-1].result
    assert result is not None and all(p.result is None for p in pieces[:-1])
    assert "".join(p.delta for p in pieces) == result.text == pieces[-1].text
    assert len(result.token_ids) <= 12
    assert result.ttft_ms > 0 and result.tpot_ms >= 0


def test_greedy_is_deterministic(tiny4_engine, key):
    a = tiny4_engine.run("Sys.", [key], "Who?", "cacheblend", max_new_tokens=10)
    b = tiny4_engine.run("Sys.", [key], "Who?", "cacheblend", max_new_tokens=10)
    assert a.token_ids == b.token_ids and a.mask == b.mask


def test_sampling_is_seeded(tiny4_engine, key):
    def run(seed):
        return tiny4_engine.run("Sys.", [key], "Who?", "naive", max_new_tokens=10,
                                temperature=1.5, seed=seed).token_ids
    assert run(1) == run(1), "the same seed must give the same sample"
    assert len({run(s) for s in range(4)}) > 1, "different seeds should differ at T=1.5"


def test_stops_at_the_token_limit_or_eos(tiny4_engine, key):
    r = tiny4_engine.run("Sys.", [key], "Who?", "naive", max_new_tokens=3)
    eos = tiny4_engine.tokenizer.eos_token_id
    if r.stop_reason == "length":
        assert len(r.token_ids) == 3
    else:
        assert r.stop_reason == "eos" and len(r.token_ids) < 3
    assert eos not in r.token_ids


def test_attention_inspection_rows_and_masking(tiny4_engine, key):
    other = tiny4_engine.compile("A second passage about the library's clock tower.")
    ins = tiny4_engine.inspect("Sys.", [key, other], "Who?", "naive", max_new_tokens=4)
    s = tiny4_engine.model.spec
    n = ins.run.num_prompt_tokens
    assert ins.query_positions[0] == n - 1, "the first row is the last prompt token"
    assert ins.scores.shape[:2] == (s.num_layers, s.num_heads)
    assert ins.scores.shape[2] == len(ins.query_positions)
    w = ins.weights()
    assert w.sum(-1).sub(1).abs().max() < 1e-5, "softmax rows must sum to 1"
    # Row i may only see keys up to its own position.
    for row, pos in enumerate(ins.query_positions):
        assert float(w[:, :, row, pos + 1:].sum()) == 0.0
    masses = ins.sink_mass(4)
    assert len(masses) == 2 and all(0 <= m <= 1 for m in masses)
    starts = [c.start for c in ins.run.layout.chunks]
    for layer, head in ((None, None), (1, 2), (0, None), (None, 3)):
        picked = w[layer] if layer is not None else w
        picked = picked[..., head, :, :] if head is not None else picked
        per_key = picked.reshape(-1, picked.shape[-1]).mean(0)  # every remaining row alike
        expected = [float(per_key[s:s + 4].sum()) for s in starts]
        assert ins.sink_mass(4, layer, head) == pytest.approx(expected, abs=1e-6), (
            f"sink mass at layer {layer}, head {head} is not the mean attention there")
