"""The block plan: exact rows and keys for every shape of batch, and the same numbers as the
dense-mask path and the Hugging Face forward on the tiny model of every family."""

from __future__ import annotations

import pytest
import torch

from engine.config import EngineConfig
from engine.engine import load_model
from engine.runtime.attention import Block, BlockKind, BlockPlan, plan_blocks, plan_run
from engine.runtime.model import Batch, Model
from tests.conftest import make_tiny_model

FAMILIES = ["llama", "llama3", "mistral", "qwen2", "qwen3"]
CALL = 4096  # the CPU price of a call, in products


def _covers_exactly(plan: BlockPlan, positions: list[int]) -> None:
    """Blocks partition the sorted rows in order; each sees keys up to its last position."""
    ordered = sorted(positions)
    rows = 0
    for b in plan.blocks:
        assert b.row_start == rows and b.row_end > b.row_start, f"rows not contiguous: {b}"
        rows = b.row_end
        assert b.num_keys == ordered[b.row_end - 1] + 1, f"keys != last position + 1: {b}"
        assert b.first_position == ordered[b.row_start], b
        if b.kind is BlockKind.CAUSAL:
            assert ordered[b.row_start:b.row_end] == list(range(b.num_keys)), b
        if b.kind is BlockKind.PADDED:
            assert ordered[b.row_start:b.row_end] == list(range(b.first_position, b.num_keys))
        if b.kind is BlockKind.FULL:
            assert b.num_rows == 1, b
    assert rows == len(positions), "every row in exactly one block"
    expected = None if positions == ordered else sorted(range(len(positions)),
                                                        key=positions.__getitem__)
    got = None if plan.order is None else plan.order.tolist()
    assert got == expected, "order must sort the rows by position"


def test_a_run_from_zero_is_one_causal_prefill():
    plan = plan_blocks(torch.arange(300), 300, CALL)
    assert [(b.kind, b.num_keys) for b in plan.blocks] == [(BlockKind.CAUSAL, 300)]
    assert plan.run_start == 0 and plan.products == 300 * 301 // 2


def test_a_single_decode_position_sees_every_key_without_a_mask():
    plan = plan_run(700, 1, CALL)
    assert [(b.kind, b.num_rows, b.num_keys) for b in plan.blocks] == [(BlockKind.FULL, 1, 701)]


def test_a_suffix_after_a_short_reused_head_is_a_padded_prefill():
    plan = plan_blocks(torch.arange(7, 900), 900, CALL)
    assert [(b.kind, b.first_position, b.num_keys) for b in plan.blocks] == [
        (BlockKind.PADDED, 7, 900)]
    assert plan.products == 900 * 901 // 2, "the zero queries' products count as waste"


def test_a_question_at_the_end_of_a_long_prompt_is_masked_over_its_keys_only():
    plan = plan_blocks(torch.arange(2000, 2030), 2030, CALL)
    assert [(b.kind, b.num_rows, b.num_keys) for b in plan.blocks] == [
        (BlockKind.MASKED, 30, 2030)]


def test_a_long_run_behind_a_long_head_is_cut_into_masked_sub_blocks():
    plan = plan_blocks(torch.arange(1000, 2000), 2000, CALL)
    _covers_exactly(plan, list(range(1000, 2000)))
    assert len(plan.blocks) > 1 and all(b.kind is BlockKind.MASKED for b in plan.blocks)
    ideal = sum(p + 1 for p in range(1000, 2000))
    assert ideal <= plan.products < 1.1 * ideal, "sub-blocks waste only their small triangles"


@pytest.mark.parametrize("name, positions", [
    ("legolink", [*range(40), *range(400, 416), *range(800, 816), *range(1200, 1230)]),
    ("scattered", sorted({(i * 37) % 1500 for i in range(200)} | {1499})),
    ("decode", [911]),
    ("shuffled", [5, 900, 3, 4, 901, 0, 1, 2, 450, 902]),
])
def test_plans_cover_every_row_once_and_never_cost_more_than_one_dense_call(name, positions):
    num_keys = max(positions) + 1
    plan = plan_blocks(torch.tensor(positions), num_keys, CALL)
    _covers_exactly(plan, positions)
    dense = len(positions) * num_keys
    assert plan.products <= dense, f"{name}: {plan.products} products > dense {dense}"
    assert plan.products + CALL * len(plan.blocks) <= dense + CALL, f"{name}: merges too few"


def test_legolink_heads_far_apart_get_a_call_each():
    positions = [*range(40), *range(400, 416), *range(800, 816), *range(1200, 1230)]
    plan = plan_blocks(torch.tensor(positions), 1230, CALL)
    kinds = [(b.kind, b.num_rows, b.num_keys) for b in plan.blocks]
    assert kinds == [(BlockKind.CAUSAL, 40, 40), (BlockKind.MASKED, 16, 416),
                     (BlockKind.MASKED, 16, 816), (BlockKind.MASKED, 30, 1230)]


@pytest.mark.parametrize("positions, num_keys, message", [
    ([3, 3, 1], 10, "distinct"),
    ([0, 10], 10, "must lie in 0..9"),
    ([], 10, "at least one position"),
])
def test_bad_positions_are_refused(positions, num_keys, message):
    with pytest.raises(ValueError, match=message):
        plan_blocks(torch.tensor(positions, dtype=torch.int64), num_keys, CALL)


@pytest.fixture(scope="module", params=FAMILIES)
def model(request, tmp_path_factory) -> Model:
    d = make_tiny_model(tmp_path_factory.mktemp(request.param), request.param)
    return load_model(EngineConfig(model=str(d), device="cpu", dtype="float32",
                                   cache_dir=str(tmp_path_factory.mktemp("cache"))))


N = 300
SCENARIOS = {  # positions recomputed over a buffer holding every other position's K/V
    "runs (legolink)": [*range(20), *range(90, 98), *range(170, 178), *range(280, N)],
    "scattered (cacheblend)": sorted({(i * 29) % N for i in range(60)} | {N - 1}),
    "short head then suffix (prefix cache)": list(range(3, N)),
    "long head then suffix": list(range(200, N)),
    "single decode position": [N - 1],
    "shuffled": [N - 1, 17, 250, 3, 120, 0, 121, 251, 122, 4],
}


def _dense(positions: torch.Tensor, num_keys: int) -> BlockPlan:
    """One MASKED block for every row: the dense [n, num_keys] mask path."""
    order = torch.argsort(positions)
    first, last = int(positions.min()), int(positions.max())
    block = Block(BlockKind.MASKED, 0, len(positions), first, last + 1)
    sorted_already = bool((order == torch.arange(len(positions))).all())
    return BlockPlan((block,), None if sorted_already else order, None)


@torch.inference_mode()
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_block_plan_equals_dense_mask_and_hf(model, scenario):
    ids = torch.randint(0, 256, (N,), generator=torch.Generator().manual_seed(3))
    ref = model.hf_model(ids[None]).logits[0]
    positions = torch.tensor(SCENARIOS[scenario])
    results = {}
    for name in ("plan", "dense"):
        kv = model.new_kv(N)  # every position's true K/V, then `positions` recomputed
        model.forward(model.embed(ids), Batch.run(0, N, model.device), kv)
        if name == "plan":
            batch = Batch.of(positions, N, model.device)
        else:
            batch = Batch(positions, N, plan=_dense(positions, N))
        out = model.forward(model.embed(ids[positions]), batch, kv)
        results[name] = (model.logits(out.h), kv.k.clone(), kv.v.clone())
    (plan, k, v), (dense, k_dense, v_dense) = results["plan"], results["dense"]
    diff = (plan - dense).abs().max().item()
    assert diff <= 1e-5, f"{model.family} {scenario}: plan vs dense mask {diff}"
    kv_diff = max((k - k_dense).abs().max().item(), (v - v_dense).abs().max().item())
    assert kv_diff <= 1e-5, f"{model.family} {scenario}: K/V written differ by {kv_diff}"
    hf = (plan - ref[positions]).abs().max().item()
    assert hf <= 1e-4, f"{model.family} {scenario}: plan vs HF {hf}"


@torch.inference_mode()
def test_a_hand_built_batch_gets_its_plan_and_exact_scores(model):
    """A Batch without a plan (as a caller may build one) is planned in the forward; its
    captured scores are -inf exactly where a query may not look."""
    ids = torch.randint(0, 256, (N,), generator=torch.Generator().manual_seed(4))
    kv = model.new_kv(N)
    model.forward(model.embed(ids), Batch.run(0, N, model.device), kv)
    positions = torch.tensor([250, 10, 299, 11])
    out = model.forward(model.embed(ids[positions]),
                        Batch(positions, N, capture_scores=True), kv, layers=range(1))
    masked = torch.arange(N)[None, :] > positions[:, None]  # [n, num_keys]
    scores = out.scores[0]  # [num_heads, n, num_keys]
    assert torch.equal(torch.isinf(scores), masked.expand_as(scores)), "-inf where masked"
    ref = model.hf_model(ids[None]).logits[0, positions]
    full = model.forward(model.embed(ids[positions]), Batch(positions, N), kv)
    assert (model.logits(full.h) - ref).abs().max() <= 1e-4
