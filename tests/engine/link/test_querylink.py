"""QueryLink: the invariants of DESIGN §5 on a tiny 4-layer model (fp32), its own rules (LegoLink's
count, the sinks first, a probe that changes nothing it should not), and on the real model its
reason to exist: closer to full recompute than LegoLink at the same count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.link import AlgorithmSpec, Kind, Layout, LinkAlgorithm, LinkContext, LinkInput, Segment
from engine.link.querylink import QueryLink, recompute_budget, sink_positions, top_positions
from engine.prompt import build_layout

DOCS = [
    "The lighthouse keeper logged every passing ship in a green notebook, wrote the weather "
    "beside each entry and sent the pages to the harbour office at the end of every month.",
    "Marie planted tomatoes, basil and three rows of beans in the spring; by August the beans "
    "had climbed the fence and the neighbours came to pick them.",
    "The orchestra rehearsed the second movement until well after midnight, because the "
    "conductor wanted the strings to enter more softly after the horn solo.",
]
PREFIX, QUESTION = "You answer from the passages only.", "What did Marie plant in the spring?"


@pytest.fixture()
def keys(tiny4_engine):
    return [tiny4_engine.compile(d) for d in DOCS]


def _maxdiff(a, b) -> float:
    return (a.first_token_logprobs - b.first_token_logprobs).abs().max().item()


def test_budget_covering_every_chunk_equals_full_recompute(tiny4_engine, keys):
    order = [keys[1], keys[2], keys[0]]
    full = tiny4_engine.run(PREFIX, order, QUESTION, "full_recompute", max_new_tokens=8)
    r = tiny4_engine.run(PREFIX, order, QUESTION, "querylink", recompute_k=1024,
                         max_new_tokens=8)
    assert _maxdiff(r, full) <= 1e-4, "querylink with k >= every chunk must be full recompute"
    assert r.token_ids == full.token_ids, "greedy tokens differ from full recompute"


def test_budget_zero_equals_naive(tiny4_engine, keys):
    naive = tiny4_engine.run(PREFIX, keys, QUESTION, "naive", max_new_tokens=8)
    r = tiny4_engine.run(PREFIX, keys, QUESTION, "querylink", recompute_k=0, max_new_tokens=8)
    assert r.mask == naive.mask, "budget 0 recomputes nothing"
    assert _maxdiff(r, naive) <= 1e-4 and r.token_ids == naive.token_ids


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_legolinks_count_with_each_chunks_sinks_first(tiny4_engine, keys, k):
    order = [keys[0], keys[2], keys[1]]
    r = tiny4_engine.run(PREFIX, order, QUESTION, "querylink", recompute_k=k, max_new_tokens=1)
    lego = tiny4_engine.run(PREFIX, order, QUESTION, "legolink", recompute_k=k,
                            max_new_tokens=1)
    assert r.mask.count(Kind.RECOMPUTED) == lego.mask.count(Kind.RECOMPUTED) == sum(
        min(k, len(c.token_ids)) for c in r.layout.chunks), "querylink-k must match legolink-k"
    assert r.num_recomputed == lego.num_recomputed
    for c in r.layout.chunks:
        head = r.mask[c.start:c.start + min(k, QueryLink.num_sinks)]
        assert all(m == Kind.RECOMPUTED for m in head), "a chunk's sinks are not recomputed"
    if k > QueryLink.num_sinks:
        assert r.mask != lego.mask, "the rest of the budget goes where the question looks"


def test_a_chunk_at_position_zero_is_left_as_cached(tiny4_engine, keys):
    r = tiny4_engine.run("", keys, QUESTION, "querylink", recompute_k=5, max_new_tokens=1)
    first, *others = r.layout.chunks
    assert first.start == 0 and all(m == Kind.CACHED for m in r.mask[first.start:first.end])
    assert r.mask.count(Kind.RECOMPUTED) == 5 * len(others)


class _Fixed(LinkAlgorithm):
    """The base algorithm's one pass over a given recompute set."""

    name = "fixed"

    def __init__(self, chosen: torch.Tensor, context: LinkContext) -> None:
        super().__init__(AlgorithmSpec.parse("naive"), context)
        self.chosen = chosen

    def select(self, layout: Layout) -> torch.Tensor:
        return self.chosen.clone()


def _link(engine, algorithm, order):
    stored = [engine.store.peek(k) for k in order]
    layout = build_layout(engine.tokenizer, PREFIX,
                          [(c.key, c.title, list(c.token_ids)) for c in stored], QUESTION)
    with torch.inference_mode():
        return algorithm.link(LinkInput(engine.model, layout, stored, layout.num_tokens + 4))


def test_probe_and_split_passes_compute_what_one_pass_would(tiny4_engine, keys):
    """The probe writes K/V only where the final pass writes them again or exactly (the
    prefix), so the linked cache equals one pass over the same recompute set."""
    order = [keys[2], keys[0], keys[1]]
    context = LinkContext(tiny4_engine.prefix_cache)
    ours = _link(tiny4_engine, QueryLink(AlgorithmSpec.parse("querylink-6"), context), order)
    chosen = ours.mask == Kind.RECOMPUTED
    one = _link(tiny4_engine, _Fixed(chosen, context), order)
    assert torch.equal(ours.mask, one.mask)
    n = ours.layout.num_tokens
    for name in ("k", "v"):
        a, b = getattr(ours.kv, name)[:, :, :n], getattr(one.kv, name)[:, :, :n]
        assert (a - b).abs().max().item() <= 1e-4, f"linked {name} differs from one pass"
    assert (ours.logits - one.logits).abs().max().item() <= 1e-4


def test_deterministic(tiny4_engine, keys):
    runs = [tiny4_engine.run(PREFIX, keys, QUESTION, "querylink", recompute_k=6,
                             max_new_tokens=6) for _ in range(2)]
    assert runs[0].mask == runs[1].mask, "the same request chose other positions"
    assert runs[0].token_ids == runs[1].token_ids
    assert torch.equal(runs[0].first_token_logprobs, runs[1].first_token_logprobs)


def test_the_question_steers_the_choice(tiny4_engine, keys):
    a = tiny4_engine.run(PREFIX, keys, QUESTION, "querylink", recompute_k=8, max_new_tokens=1)
    b = tiny4_engine.run(PREFIX, keys, "Who kept the notebook by the sea?", "querylink",
                         recompute_k=8, max_new_tokens=1)
    chunk_mask = [[a.mask[i] for i in range(c.start, c.end)] for c in a.layout.chunks]
    other = [[b.mask[i] for i in range(c.start, c.end)] for c in b.layout.chunks]
    assert chunk_mask != other, "another question, the same positions: the probe is unused"


def _layout() -> Layout:
    """prefix 0-2, chunk 3-8, chunk 9-14, suffix 15-16."""
    segments = (Segment("prefix", 0, (1, 2, 3)), Segment("chunk", 3, tuple(range(6)), "a"),
                Segment("chunk", 9, tuple(range(6)), "b"), Segment("suffix", 15, (7, 8)))
    return Layout(tuple(t for s in segments for t in s.token_ids), segments)


def test_budget_sinks_and_ranking_by_hand():
    layout = _layout()
    assert recompute_budget(layout, 4) == 8 and recompute_budget(layout, 100) == 12
    forced, candidates = sink_positions(layout, 4, num_sinks=2)
    assert torch.nonzero(forced).flatten().tolist() == [3, 4, 9, 10]
    assert torch.nonzero(candidates).flatten().tolist() == [5, 6, 7, 8, 11, 12, 13, 14]
    forced, _ = sink_positions(layout, 1, num_sinks=2)
    assert torch.nonzero(forced).flatten().tolist() == [3, 9], "k below the sinks caps them"
    importance = torch.zeros(17)
    importance[[0, 3, 16]] = 9.0  # not candidates: never chosen
    importance[[6, 12, 13]] = torch.tensor([0.5, 0.7, 0.5])
    chosen = top_positions(importance, candidates, 2)
    assert torch.nonzero(chosen).flatten().tolist() == [6, 12], "a tie goes to the earlier"
    assert top_positions(importance, candidates, 0).sum() == 0


@pytest.mark.slow
def test_closer_to_full_recompute_than_legolink_at_the_same_count(smollm2_engine):
    from engine.fidelity import kl_divergence

    engine = smollm2_engine
    data = Path(__file__).parents[2] / "data" / "hotpotqa_5.jsonl"
    kls: dict[str, list[float]] = {"legolink": [], "querylink": []}
    for line in data.read_text().splitlines():
        example = json.loads(line)
        order = [engine.compile(c) for c in example["chunks"][:6]]
        full = engine.run(PREFIX, order, example["question"], "full_recompute",
                          max_new_tokens=1)
        counts = set()
        for name, values in kls.items():
            r = engine.run(PREFIX, order, example["question"], name, recompute_k=16,
                           max_new_tokens=1)
            values.append(kl_divergence(full.first_token_logprobs, r.first_token_logprobs))
            counts.add(r.mask.count(Kind.RECOMPUTED))
        assert len(counts) == 1, "querylink-16 and legolink-16 recompute different counts"
    lego, query = (sum(v) / len(v) for v in (kls["legolink"], kls["querylink"]))
    assert query < lego, f"mean first-token KL: querylink {query:.4f} >= legolink {lego:.4f}"
