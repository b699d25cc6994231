"""Compile: one chunk's token ids -> its K/V, prefilled on its own at positions 0..T-1.

This is the only place a chunk's KV is made. Every chunk is compiled alone, so each one
carries its own attention sink at its head: that is what linking has to correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.runtime import Batch, Model


@torch.inference_mode()
def compile_chunk(model: Model, token_ids: list[int] | tuple[int, ...],
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefill `token_ids` at positions 0..T-1 -> (k, v).

    # k, v: [num_layers, num_kv_heads, T, head_dim] in the model's dtype and device; k before RoPE
    """
    n = len(token_ids)
    kv = model.new_kv(n)
    ids = torch.tensor(list(token_ids), device=model.device)
    out = model.forward(model.embed(ids), Batch.run(0, n, model.device, capture_k=True), kv)
    return out.k_pre, kv.v


@dataclass(frozen=True)
class CompileVariant:
    """How the chunks an algorithm links were compiled: an algorithm declares it on its class.

    The default compiles a chunk alone at 0..T-1 (`compile_chunk`). A variant compiles it
    otherwise (behind sacrificial sink tokens whose K/V it drops, behind a shared prefix) and
    overrides `compile`, keeping its output's layout. Its `name` is to be part of the store's
    key beside the token ids, so that variants never mix; until the store keys chunks by
    variant (ChunkFormat.key_for, the codec), the registry accepts the default only.
    """

    name: str = ""  # "" for the default

    def compile(self, model: Model, token_ids: list[int] | tuple[int, ...],
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """token ids -> (k, v) as `compile_chunk` shapes them."""
        return compile_chunk(model, token_ids)


DEFAULT_COMPILE = CompileVariant()
