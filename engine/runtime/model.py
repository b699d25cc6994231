"""The model runtime: a Llama-family forward in which we choose which positions get fresh Q/K/V.

Weights come from a `transformers` model; the forward is ours. Its one core call,
`Model.forward`, takes the hidden states of a `Batch` of positions, computes their Q/K/V layer
by layer, writes their K/V into the per-layer buffers, and lets their queries attend causally
*by position* over every key present, block by block (attention.py), so no work is spent
on keys a query cannot see. Full prefill, decoding, compiling a chunk and every link algorithm
are calls of it with different batches; the caller says which kind it is. Full prefill rounds
exactly as the Hugging Face forward does (same kernels, same order of additions).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.runtime.attention import Attention, BlockPlan, call_products, plan_blocks, plan_run
from engine.runtime.kv import KVBuffer, KVMemory
from engine.runtime.rope import Rope, rope_parameters
from engine.runtime.rope import check_supported as check_rope

SUPPORTED_FAMILIES = ("llama", "mistral", "qwen2", "qwen3")
MLP_SLAB_BYTES = 16 << 20  # MLP activations per slab of rows (glibc maps above 32 MiB afresh)


@dataclass(frozen=True)
class ModelSpec:
    """Shapes of the loaded model."""

    family: str
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    vocab_size: int
    max_positions: int  # the model's own context limit (sliding window included)


@dataclass(frozen=True)
class Batch:
    """The positions one forward computes, and how their queries see the keys.

    The caller says what kind of batch it is (it knows from host-side data), so the forward
    never reads positions back from the device to find out.
    # positions: [n] int64 on the model's device, distinct
    run_start: the positions are the one causal run run_start..run_start+n-1 and the keys end
    with it (prefill, compile, decoding, a contiguous suffix); None for any other set.
    plan: how the queries attend (attention.py), made from host data by `run` and `of`;
    a Batch built by hand without one gets it in the forward, from one read of the positions.
    """

    positions: torch.Tensor
    num_keys: int  # the queries see keys 0..num_keys-1 (those at positions <= their own)
    run_start: int | None = None
    capture_k: bool = False  # return K before RoPE (compile stores it)
    capture_scores: bool = False  # return the scaled QKᵀ scores (inspection)
    plan: BlockPlan | None = None
    # A caller's own RoPE positions ([n] on the device; None: the positions themselves) and
    # attention (attend(q [num_heads, n, head_dim] rotated, keys, values [num_kv_heads,
    # num_keys, head_dim], out [n, num_heads, head_dim], positions) fills out), for a link
    # that reuses one position range for several chunks (APE). K/V stay indexed by position.
    rope_positions: torch.Tensor | None = None
    attend: Callable | None = None

    @property
    def num_positions(self) -> int:
        return self.positions.shape[0]

    @classmethod
    def run(cls, start: int, n: int, device: torch.device, **capture: bool) -> Batch:
        """The causal run start..start+n-1 at the end of the keys (num_keys = start + n)."""
        positions = torch.arange(start, start + n, device=device)
        plan = plan_run(start, n, call_products(device))
        return cls(positions, start + n, start, **capture, plan=plan)

    @classmethod
    def of(cls, positions: torch.Tensor, num_keys: int, device: torch.device,
           **capture: bool) -> Batch:
        """Any set of distinct positions, given on the host: the plan (and whether they are a
        causal run at the end of the keys) is worked out here, once, from the host tensor."""
        plan = plan_blocks(positions, num_keys, call_products(device))
        n = positions.shape[0]
        ordered = plan.run_start is not None and plan.run_start + n == num_keys
        return cls(positions.to(device), num_keys, plan.run_start if ordered else None,
                   **capture, plan=plan)


@dataclass(frozen=True)
class ForwardOut:
    """What a forward returns.

    # h: [n, hidden_size]
    # k_pre: [num_layers_run, num_kv_heads, n, head_dim], K before RoPE (when captured)
    # scores: [num_layers_run, num_heads, n, num_keys] fp32, -inf where masked (when captured)
    """

    h: torch.Tensor
    k_pre: torch.Tensor | None = None
    scores: torch.Tensor | None = None


def now_ms(device: torch.device) -> float:
    """perf_counter in ms, after the device's queued work is done (timings must include it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() * 1e3


def check_supported(hf_config) -> str:
    """Refuse, at load time, any architecture or variant our forward would get silently wrong."""
    family = getattr(hf_config, "model_type", None)
    if family not in SUPPORTED_FAMILIES:
        raise ValueError(f"unsupported architecture {family!r}: EPIC Lab runs "
                         f"{', '.join(SUPPORTED_FAMILIES)} (Llama family)")
    act = getattr(hf_config, "hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"unsupported activation {act!r}: only SiLU MLPs are implemented")
    if family == "qwen2" and getattr(hf_config, "use_sliding_window", False):
        raise ValueError("unsupported: Qwen2 with use_sliding_window=True")
    if getattr(hf_config, "pretraining_tp", 1) not in (1, None):
        raise ValueError("unsupported: pretraining_tp != 1")
    check_rope(rope_parameters(hf_config))
    return family


def rms_norm(x: torch.Tensor, norm: torch.nn.Module) -> torch.Tensor:
    """RMSNorm as Llama computes it: normalise in fp32, scale by the weight in x's dtype."""
    eps = getattr(norm, "variance_epsilon", None) or norm.eps
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return norm.weight * xf.to(x.dtype)


@dataclass(frozen=True)
class _Prepared:
    """Per-forward constants and buffers shared by every layer."""

    batch: Batch
    where: slice | torch.Tensor  # the positions: a slice for one run, else [n] on the device
    cos: torch.Tensor  # [n, head_dim // 2] fp32
    sin: torch.Tensor
    attention: Attention
    q: torch.Tensor  # [num_heads, n, head_dim]: each layer's rotated queries
    out: torch.Tensor  # [n, num_heads, head_dim]: each layer's attention output
    scratch: torch.Tensor  # [num_heads, n, head_dim // 2]: RoPE's half-size temporary
    mask: torch.Tensor | None  # [n, num_keys] bool, True where a query sees a key (scores)


class Model:
    """A loaded model: weights, tokenizer, RoPE, and our forward over them."""

    def __init__(self, hf_model, tokenizer, model_id: str) -> None:
        cfg = hf_model.config
        self.family = check_supported(cfg)
        self.hf_model = hf_model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id  # the weights' identity (hub id, path or bundled name)
        self.device = next(hf_model.parameters()).device
        self.dtype = next(hf_model.parameters()).dtype
        self.dtype_name = str(self.dtype).removeprefix("torch.")
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        max_positions = cfg.max_position_embeddings
        window = getattr(cfg, "sliding_window", None) if self.family == "mistral" else None
        if window:
            max_positions = min(max_positions, window)  # beyond it Mistral would need a window
        self.spec = ModelSpec(self.family, cfg.num_hidden_layers, cfg.num_attention_heads,
                              cfg.num_key_value_heads, head_dim, cfg.hidden_size, cfg.vocab_size,
                              max_positions)
        self.rope = Rope(rope_parameters(cfg), head_dim, self.device)
        self.layers = hf_model.model.layers
        self.scale = head_dim**-0.5
        self.kv_memory = KVMemory(cfg.num_hidden_layers, cfg.num_key_value_heads, head_dim,
                                  self.dtype, self.device)

    @property
    def bytes_per_token(self) -> int:
        """Exact K+V bytes one token occupies over all layers."""
        s = self.spec
        return 2 * s.num_layers * s.num_kv_heads * s.head_dim * self.dtype.itemsize

    def new_kv(self, capacity: int, reuse: bool = False) -> KVBuffer:
        """Uninitialised buffers: every position is written (gathered from a cache, or computed
        at each layer before that layer attends) before any query can read it. reuse=True for
        a request's own buffer: the memory of an earlier one nothing refers to is used again
        (kv.py)."""
        return self.kv_memory.new(capacity, reuse)

    def embed(self, token_ids: torch.Tensor) -> torch.Tensor:
        """token_ids: [n] -> hidden states [n, hidden_size]."""
        return self.hf_model.model.embed_tokens(token_ids.to(self.device))

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Final norm and LM head: h [n, hidden_size] -> [n, vocab_size] in fp32."""
        return self.hf_model.lm_head(rms_norm(h, self.hf_model.model.norm)).float()

    def forward(self, h: torch.Tensor, batch: Batch, kv: KVBuffer,
                layers: range | None = None) -> ForwardOut:
        """Run `layers` (default: all) for the batch's positions; return their hidden states.

        h: [n, hidden_size] for batch.positions. At each layer the fresh K (rotated to its
        position) and V are written into `kv` at those positions; the queries then attend to
        every key at a position <= their own among the first `batch.num_keys` positions (which
        the caller has filled with cached K/V or is computing now), block by block as the
        batch's plan says: no product is spent on a key a query cannot see.
        """
        kv.num_keys = batch.num_keys
        prep = self._prepare(batch)
        k_pre, scores = [], []
        for i in layers if layers is not None else range(self.spec.num_layers):
            h, k_i, scores_i = self._layer(i, h, prep, kv)
            k_pre.append(k_i)
            scores.append(scores_i)
        return ForwardOut(h, torch.stack(k_pre) if batch.capture_k else None,
                          torch.stack(scores) if batch.capture_scores else None)

    def key_pre(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Layer i's fresh K before RoPE for hidden states h [n, hidden_size] (the input of
        layer i) -> [num_kv_heads, n, head_dim]: what a check layer compares to a cached K."""
        s, layer = self.spec, self.layers[i]
        x = rms_norm(h, layer.input_layernorm)
        k = layer.self_attn.k_proj(x).view(h.shape[0], s.num_kv_heads, s.head_dim)
        if hasattr(layer.self_attn, "k_norm"):  # Qwen3, as in _layer
            k = rms_norm(k, layer.self_attn.k_norm)
        return k.transpose(0, 1)

    def _prepare(self, batch: Batch) -> _Prepared:
        s, n = self.spec, batch.num_positions
        plan = batch.plan
        if plan is None:  # built by hand: one read of the positions, before the layer loop
            plan = plan_blocks(batch.positions.cpu(), batch.num_keys, call_products(self.device))
        if plan.run_start is not None:  # one run: K/V written as a slice, RoPE sliced
            a = plan.run_start
            where: slice | torch.Tensor = slice(a, a + n)
            cos, sin = (t[a:a + n] for t in self.rope.table(a + n))
        else:
            where = batch.positions
            cos, sin = (t.index_select(0, where) for t in self.rope.table(batch.num_keys))
        if batch.rope_positions is not None:
            cos, sin = (t.index_select(0, batch.rope_positions)
                        for t in self.rope.table(batch.num_keys))
        attention = Attention(plan, batch.positions, s.num_heads, s.num_kv_heads, s.head_dim,
                              self.scale, self.dtype)
        mask = None
        if batch.capture_scores:
            key_pos = torch.arange(batch.num_keys, device=self.device)
            mask = key_pos[None, :] <= batch.positions[:, None]
        out = torch.empty(n, s.num_heads, s.head_dim, dtype=self.dtype, device=self.device)
        scratch = torch.empty(s.num_heads, n, s.head_dim // 2, dtype=self.dtype,
                              device=self.device)
        return _Prepared(batch, where, cos, sin, attention, attention.query_buffer(n), out,
                         scratch, mask)

    def _layer(self, i: int, h: torch.Tensor, prep: _Prepared, kv: KVBuffer):
        """One decoder layer -> (h, K before RoPE or None, scores or None)."""
        s, layer, batch = self.spec, self.layers[i], prep.batch
        attn, n = layer.self_attn, h.shape[0]
        x = rms_norm(h, layer.input_layernorm)
        # q: [n, num_heads, head_dim]; k, v: [num_kv_heads, n, head_dim]
        q = attn.q_proj(x).view(n, s.num_heads, s.head_dim)
        k = attn.k_proj(x).view(n, s.num_kv_heads, s.head_dim)
        v = attn.v_proj(x).view(n, s.num_kv_heads, s.head_dim).transpose(0, 1)
        if hasattr(attn, "q_norm"):  # Qwen3: per-head RMSNorm on q and k before RoPE
            q, k = rms_norm(q, attn.q_norm), rms_norm(k, attn.k_norm)
        k = k.transpose(0, 1)
        if isinstance(prep.where, slice):  # rotate straight into the buffer
            Rope.rotate_into(kv.k[i, :, prep.where], k, prep.cos, prep.sin,
                             prep.scratch[: s.num_kv_heads])
            kv.v[i, :, prep.where] = v
        else:
            kv.k[i].index_copy_(1, prep.where, Rope.rotate(k, prep.cos, prep.sin))
            kv.v[i].index_copy_(1, prep.where, v)
        Rope.rotate_into(prep.q, q.transpose(0, 1), prep.cos, prep.sin, prep.scratch)
        keys, values = kv.k[i, :, : batch.num_keys], kv.v[i, :, : batch.num_keys]
        scores = self._scores(prep.q, keys, prep.mask) if batch.capture_scores else None
        if batch.attend is not None:
            batch.attend(prep.q, keys, values, prep.out, batch.positions)
        else:
            prep.attention(prep.q, keys, values, prep.out)
        h = h + attn.o_proj(prep.out.view(n, s.num_heads * s.head_dim))
        self._mlp(layer, h)
        return h, (k if batch.capture_k else None), scores

    def _mlp(self, layer, h: torch.Tensor) -> None:
        """h += MLP(norm(h)), in place, a slab of rows at a time: the [rows, intermediate]
        activations of a long prefill stay small enough to be reused, never freshly mapped."""
        mlp = layer.mlp
        rows = max(256, MLP_SLAB_BYTES // (mlp.gate_proj.out_features * h.element_size()))
        for r0 in range(0, h.shape[0], rows):
            slab = h[r0:r0 + rows]
            x = rms_norm(slab, layer.post_attention_layernorm)
            gate = F.silu(mlp.gate_proj(x), inplace=True).mul_(mlp.up_proj(x))
            slab += mlp.down_proj(gate)

    def _scores(self, q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        group = self.spec.num_heads // self.spec.num_kv_heads
        scores = (q.float() @ keys.float().repeat_interleave(group, 0).transpose(1, 2)) * self.scale
        return scores.masked_fill(~mask, float("-inf"))
