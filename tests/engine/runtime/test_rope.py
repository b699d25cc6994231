"""Our RoPE equals Hugging Face's, and re-rotating a cached chunk equals computing it there."""

from __future__ import annotations

import pytest
import torch

from engine.runtime.model import Batch
from engine.runtime.rope import Rope, rope_parameters
from tests.conftest import tiny_hf_config


def rotate_at(rope: Rope, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x: [..., T, head_dim] before RoPE, rotated to `positions` [T] as the engine rotates a
    scattered set: the cached table's rows at those positions, then `Rope.rotate`."""
    cos, sin = (t[positions] for t in rope.table(int(positions.max()) + 1))
    return Rope.rotate(x, cos, sin)


@pytest.mark.parametrize("family", ["llama", "llama3"])
def test_cos_sin_equal_hf(family):
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    cfg = tiny_hf_config(family)
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    ours = Rope(rope_parameters(cfg), head_dim, torch.device("cpu"))
    positions = torch.arange(0, 3000, 7)
    cos_ref, sin_ref = LlamaRotaryEmbedding(cfg)(torch.zeros(1), positions[None])
    cos, sin = (torch.cat((t[positions], t[positions]), dim=-1) for t in ours.table(3000))
    assert torch.allclose(cos, cos_ref[0], atol=1e-6), f"{family}: cos differs from HF"
    assert torch.allclose(sin, sin_ref[0], atol=1e-6), f"{family}: sin differs from HF"


def test_rotation_composes_and_preserves_norm():
    rope = Rope({"rope_type": "default", "rope_theta": 10000.0}, 16, torch.device("cpu"))
    x = torch.randn(3, 5, 16)
    p = torch.arange(5) + 100
    once = rotate_at(rope, x, p)
    assert torch.allclose(once.norm(dim=-1), x.norm(dim=-1), atol=1e-5), "rotation changed norms"
    twice = rotate_at(rope, rotate_at(rope, x, p - 40), torch.full((5,), 40))
    assert torch.allclose(once, twice, atol=1e-4), "rotating by a then b != rotating by a+b"


@torch.inference_mode()
def test_chunk_moved_to_p_has_the_keys_computed_at_p(tiny4_engine):
    """Layer-0 keys depend only on the token, so compile-at-0-then-rotate must equal
    computing the chunk directly at positions p..p+T-1."""
    engine = tiny4_engine
    key = engine.compile("A chunk compiled at position zero, then moved.")
    chunk = engine.store.get(key)
    model, n, p = engine.model, chunk.num_tokens, 517
    positions = torch.arange(p, p + n)
    kv = model.new_kv(p + n)
    model.forward(model.embed(torch.tensor(chunk.token_ids)), Batch.run(p, n, model.device), kv,
                  layers=range(1))
    moved = rotate_at(model.rope, chunk.k[0], positions)
    diff = (moved - kv.k[0, :, p:p + n]).abs().max().item()
    assert diff <= 1e-5, f"re-rotated keys differ from keys computed at p by {diff}"
