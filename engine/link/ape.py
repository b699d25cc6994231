"""APE, Adaptive Parallel Encoding (Yang et al., ICLR 2025, arXiv 2502.05431) as a link
algorithm: every chunk reuses one RoPE position range, and the prompt's own rows attend to the
chunks with a lower temperature and a scaled share, merged by log-sum-exp."""

from __future__ import annotations

from dataclasses import replace

import torch

from engine.link.base import LinkAlgorithm, LinkInput, LinkResult, kind_mask
from engine.link.compile import SINK_COMPILE
from engine.link.parameter import Parameter
from engine.runtime import Batch, now_ms

APE_TEMPERATURE = Parameter(
    "ape_t", "ape_temperature", "real", 0.1, 2.0, 0.9, "APE temperature T",
    "APE's attention temperature on the chunks (arXiv 2502.05431; default 0.9 as "
    "Infini-AI-Lab/APE demo_ape.py): below 1 sharpens the attention within the chunks")
APE_SCALE = Parameter(
    "ape_s", "ape_scale", "real", 0.1, 2.0, 0.9, "APE scale S",
    "APE's scaling factor (arXiv 2502.05431; default 0.9 as Infini-AI-Lab/APE demo_ape.py): "
    "the chunks' log-sum-exp is multiplied by S·T, so below 1 shrinks their share of attention")


def ape_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                  in_context: torch.Tensor, positions: torch.Tensor, temperature: float,
                  scale: float, softmax_scale: float) -> torch.Tensor:
    """APE's merged attention, in fp32, for queries at `positions` (causal by position).

    q: [num_heads, n, head_dim] rotated; keys, values: [num_kv_heads, num_keys, head_dim];
    in_context: [num_keys] bool, the chunks' keys -> [n, num_heads, head_dim].
    With z = q·k·softmax_scale, the chunks' keys C and the others O, APE's code computes
    softmax over C of z/T (lse_C) and over O of z (lse_O) and merges them with weights
    softmax([S·T·lse_C, lse_O]); that is one softmax over z' = z/T + (S·T − 1)·lse_C on C and
    z on O, which is what we compute. T = S = 1 gives z' = z: plain softmax attention.
    """
    num_heads, n, head_dim = q.shape
    num_kv_heads, num_keys = keys.shape[:2]
    group = num_heads // num_kv_heads
    # z: [num_kv_heads, group, n, num_keys]; query head h reads KV head h // group
    z = torch.einsum("kgnd,kmd->kgnm", q.float().view(num_kv_heads, group, n, head_dim),
                     keys.float()) * softmax_scale
    visible = torch.arange(num_keys, device=q.device)[None, :] <= positions[:, None]
    context = visible & in_context[None, :num_keys]  # [n, num_keys]
    z_context = z / temperature
    lse = torch.logsumexp(z_context.masked_fill(~context, float("-inf")), -1, keepdim=True)
    # rows that see no chunk key have lse = -inf; torch.where never picks that branch there
    z = torch.where(context, z_context + (scale * temperature - 1.0) * lse, z)
    p = torch.softmax(z.masked_fill(~visible, float("-inf")), dim=-1)
    out = p @ values.float()[:, None]  # [num_kv_heads, group, n, head_dim]
    return out.reshape(num_heads, n, head_dim).transpose(0, 1)


class APE(LinkAlgorithm):
    """APE (arXiv 2502.05431; code Infini-AI-Lab/APE, ape/ape_llama.py), training-free.

    Positions: the prefix keeps 0..P-1; token j of *every* chunk sits at RoPE position P + j;
    the question starts at P + max_i T_i and decoding continues from there (slots, the order
    of K/V and of causality, stay as laid out). So chunks are encoded in parallel, and a prompt
    can reach past the model's trained length. Attention: the prefix, the question and every
    generated token attend with `ape_attention` (temperature T, scale S); no chunk position
    is recomputed, naive's cost, on APE's compile.

    Choices where the paper leaves them open or our engine differs: APE's shared prefix is
    the chat template's head, prefilled once; ours compiles each chunk behind 3 sink tokens
    whose K/V are dropped (LegoLink-0's compile variant, one variant for both), since a
    compile knows no request's prefix; the request's own prefix (which starts with the
    template head) is then computed, not cached. The chunk range starts at the request's
    prefix length. APE's code applies T and S at every layer and at every generated token, so
    do we. Inspect's attention maps show plain attention scores for APE's rows.
    """

    name = "ape"
    summary = ("nothing: chunks share one position range, and the question attends to them "
               "with temperature T and scale S (log-sum-exp merge)")
    paper = "APE, Adaptive Parallel Encoding (Yang et al., ICLR 2025, arXiv 2502.05431)"
    color = "#e8590c"
    parameters = (APE_TEMPERATURE, APE_SCALE)
    compile_variant = SINK_COMPILE

    def link(self, job: LinkInput) -> LinkResult:
        model, layout = job.model, job.layout
        t0 = now_ms(model.device)
        n, chunks = layout.num_tokens, layout.chunks
        rope = torch.arange(job.capacity)  # each slot's RoPE position
        in_context = torch.zeros(job.capacity, dtype=torch.bool)
        shift = 0
        if chunks:
            start = chunks[0].start
            longest = max(len(seg.token_ids) for seg in chunks)
            shift = chunks[-1].end - start - longest
            for seg in chunks:
                rope[seg.start:seg.end] = torch.arange(start, start + len(seg.token_ids))
                in_context[seg.start:seg.end] = True
            rope[chunks[-1].end:] -= shift
        kv = model.new_kv(job.capacity, reuse=True)
        kv.num_keys = n
        cos, sin = model.rope.table(n)
        for seg, chunk in zip(chunks, job.chunks, strict=True):
            where = rope[seg.start:seg.end].to(cos.device)
            model.rope.rotate_into(kv.k[:, :, seg.start:seg.end], chunk.k,
                                   cos.index_select(0, where), sin.index_select(0, where))
            kv.v[:, :, seg.start:seg.end] = chunk.v
        t1 = now_ms(model.device)
        device = model.device
        rope, in_context = rope.to(device), in_context.to(device)
        temperature = float(self.value(APE_TEMPERATURE))
        scale = float(self.value(APE_SCALE))

        def attend(q, keys, values, out, positions) -> None:
            out.copy_(ape_attention(q, keys, values, in_context, positions, temperature,
                                    scale, model.scale))

        def batch(positions: torch.Tensor, num_keys: int) -> Batch:
            b = Batch.of(positions, num_keys, device)
            return replace(b, rope_positions=rope.index_select(0, b.positions), attend=attend)

        cached = in_context[:n].cpu()
        positions = torch.nonzero(~cached).flatten()
        if int(positions[-1]) != n - 1:
            raise ValueError("the last prompt position must be computed: the suffix is empty")
        h = model.embed(torch.tensor(layout.token_ids)[positions])
        h = model.forward(h, batch(positions, n), kv).h
        logits = model.logits(h[-1:])[0]
        t2 = now_ms(model.device)
        mask = kind_mask(cached, torch.zeros(n, dtype=torch.bool))  # no chunk recomputed
        return LinkResult(self.label, layout, kv, logits, mask, len(positions),
                          len(positions) * model.spec.num_layers,
                          {"gather_ms": t1 - t0, "forward_ms": t2 - t1},
                          decode_batch=lambda slot: batch(torch.tensor([slot]), slot + 1))
