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
    overrides `compile`, keeping its output's layout (T rows, K before RoPE). Its `name` is
    part of the store's key beside the token ids (store.chunk_key), and the codec records it,
    so variants never mix. The engine compiles a variant on demand, when a request's algorithm
    names it, for every chunk but one that opens the prompt (exact as compiled plainly).
    """

    name: str = ""  # "" for the default

    def compile(self, model: Model, token_ids: list[int] | tuple[int, ...],
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """token ids -> (k, v) as `compile_chunk` shapes them."""
        return compile_chunk(model, token_ids)


DEFAULT_COMPILE = CompileVariant()


@dataclass(frozen=True)
class SinkCompile(CompileVariant):
    """LegoLink-0's compile (EPIC's `kvlink-0`, benchmarks_ours/evals/zero-linking-overhead):
    prefill `num_sink_tokens` sacrificial tokens, then the chunk, and drop their K/V. They take
    the chunk's attention sink, so the chunk's own tokens carry none.

    Choices: the sacrificial token is the tokenizer's BOS (EPIC's choice), its EOS when it has
    none; EPIC also drops the chunk's own BOS, we keep it, so that every algorithm links one
    token sequence. The chunk's K stays before RoPE (linking rotates it to its global slots).
    """

    name: str = "sink3"
    num_sink_tokens: int = 3

    def compile(self, model: Model, token_ids: list[int] | tuple[int, ...],
                ) -> tuple[torch.Tensor, torch.Tensor]:
        tok = model.tokenizer
        sink = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if sink is None:
            raise ValueError(f"{model.model_id}: its tokenizer has neither a BOS nor an EOS "
                             "token to compile behind")
        k, v = compile_chunk(model, [sink] * self.num_sink_tokens + list(token_ids))
        n = self.num_sink_tokens
        return k[:, :, n:].contiguous(), v[:, :, n:].contiguous()


SINK_COMPILE = SinkCompile()
