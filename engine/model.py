"""The model runtime: a Llama-family forward in which we choose which positions get fresh Q/K/V.

Weights come from a `transformers` model; the forward is ours. Its one core call,
`Model.forward`, takes the hidden states of a `Batch` of positions, computes their Q/K/V layer
by layer, writes their K/V into the per-layer buffers, and lets their queries attend causally
*by position* over every key present. Full prefill, decoding, compiling a chunk and every link
algorithm are calls of it with different batches; the caller says which kind it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.rope import Rope, rope_parameters
from engine.rope import check_supported as check_rope

SUPPORTED_FAMILIES = ("llama", "mistral", "qwen2", "qwen3")


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


@dataclass
class KVBuffer:
    """Per-request K/V for every layer, indexed by global position.

    # k, v: [num_layers, num_kv_heads, capacity, head_dim]; k *after* RoPE at its index
    `num_keys` positions (0..num_keys-1) are filled; the rest is room for decoding.
    """

    k: torch.Tensor
    v: torch.Tensor
    num_keys: int = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[2]


@dataclass(frozen=True)
class Batch:
    """The positions one forward computes, and how their queries see the keys.

    The caller says what kind of batch it is (it knows from host-side data), so the forward
    never reads positions back from the device to find out.
    # positions: [n] int64 on the model's device, distinct
    run_start: the positions are the one causal run run_start..run_start+n-1 and the keys end
    with it (prefill, compile, decoding, a contiguous suffix); None for any other set.
    """

    positions: torch.Tensor
    num_keys: int  # the queries see keys 0..num_keys-1 (those at positions <= their own)
    run_start: int | None = None
    capture_k: bool = False  # return K before RoPE (compile stores it)
    capture_scores: bool = False  # return the scaled QKᵀ scores (inspection)

    @property
    def num_positions(self) -> int:
        return self.positions.shape[0]

    @classmethod
    def run(cls, start: int, n: int, device: torch.device, **capture: bool) -> Batch:
        """The causal run start..start+n-1 at the end of the keys (num_keys = start + n)."""
        positions = torch.arange(start, start + n, device=device)
        return cls(positions, start + n, start, **capture)

    @classmethod
    def of(cls, positions: torch.Tensor, num_keys: int, device: torch.device) -> Batch:
        """Any set of distinct positions, given on the host: a causal run at the end of the
        keys is recognised here, once, from the host tensor."""
        n = positions.shape[0]
        start = num_keys - n
        ordered = n > 0 and bool((positions == torch.arange(start, num_keys)).all())
        return cls(positions.to(device), num_keys, start if ordered else None)


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
    """Per-forward constants shared by every layer: RoPE tables and the attention mask."""

    batch: Batch
    cos: torch.Tensor  # [n, head_dim] fp32
    sin: torch.Tensor
    mask: torch.Tensor | None  # [n, num_keys] bool, True where a query sees a key


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

    @property
    def bytes_per_token(self) -> int:
        """Exact K+V bytes one token occupies over all layers."""
        s = self.spec
        return 2 * s.num_layers * s.num_kv_heads * s.head_dim * self.dtype.itemsize

    def new_kv(self, capacity: int) -> KVBuffer:
        """Uninitialised buffers: every position is written (gathered from a cache, or computed
        at each layer before that layer attends) before any query can read it."""
        s = self.spec
        shape = (s.num_layers, s.num_kv_heads, capacity, s.head_dim)
        return KVBuffer(torch.empty(shape, dtype=self.dtype, device=self.device),
                        torch.empty(shape, dtype=self.dtype, device=self.device))

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
        the caller has filled with cached K/V or is computing now).
        """
        kv.num_keys = batch.num_keys
        cos, sin = self.rope.cos_sin(batch.positions)
        mask = None
        # A causal run needs no mask: from 0 it is SDPA's causal prefill; a single query at
        # the end (decoding) sees every key. Any other batch gets an explicit [n, num_keys]
        # mask: attention memory O(n * num_keys), never O(num_keys^2) for n << num_keys.
        plain_run = batch.run_start == 0 or (batch.run_start is not None
                                             and batch.num_positions == 1)
        if batch.capture_scores or not plain_run:
            key_pos = torch.arange(batch.num_keys, device=self.device)
            mask = key_pos[None, :] <= batch.positions[:, None]
        prep = _Prepared(batch, cos, sin, mask)
        k_pre, scores = [], []
        for i in layers if layers is not None else range(self.spec.num_layers):
            h, k_i, scores_i = self._layer(i, h, prep, kv)
            k_pre.append(k_i)
            scores.append(scores_i)
        return ForwardOut(h, torch.stack(k_pre) if batch.capture_k else None,
                          torch.stack(scores) if batch.capture_scores else None)

    def _layer(self, i: int, h: torch.Tensor, prep: _Prepared, kv: KVBuffer):
        """One decoder layer -> (h, K before RoPE or None, scores or None)."""
        s, layer, batch = self.spec, self.layers[i], prep.batch
        attn, n = layer.self_attn, h.shape[0]
        x = rms_norm(h, layer.input_layernorm)
        # q: [num_heads, n, head_dim]; k, v: [num_kv_heads, n, head_dim]
        q = attn.q_proj(x).view(n, s.num_heads, s.head_dim)
        k = attn.k_proj(x).view(n, s.num_kv_heads, s.head_dim)
        v = attn.v_proj(x).view(n, s.num_kv_heads, s.head_dim).transpose(0, 1)
        if hasattr(attn, "q_norm"):  # Qwen3: per-head RMSNorm on q and k before RoPE
            q, k = rms_norm(q, attn.q_norm), rms_norm(k, attn.k_norm)
        q, k = q.transpose(0, 1), k.transpose(0, 1)
        kv.k[i, :, batch.positions] = Rope.rotate(k, prep.cos, prep.sin)
        kv.v[i, :, batch.positions] = v
        q = Rope.rotate(q, prep.cos, prep.sin)
        keys, values = kv.k[i, :, : batch.num_keys], kv.v[i, :, : batch.num_keys]
        scores = self._scores(q, keys, prep.mask) if batch.capture_scores else None
        out = self._attend(q, keys, values, prep)  # [num_heads, n, head_dim]
        h = h + attn.o_proj(out.transpose(0, 1).reshape(n, s.num_heads * s.head_dim))
        x = rms_norm(h, layer.post_attention_layernorm)
        mlp = layer.mlp
        h = h + mlp.down_proj(F.silu(mlp.gate_proj(x)) * mlp.up_proj(x))
        return h, (k if batch.capture_k else None), scores

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                prep: _Prepared) -> torch.Tensor:
        if prep.batch.run_start == 0:  # same kernel and arguments as the HF forward here
            return F.scaled_dot_product_attention(q[None], keys[None], values[None], is_causal=True,
                                                  scale=self.scale, enable_gqa=True)[0]
        # Grouped-query attention without copying K/V per query head: fold the query heads
        # that share a KV head into the query axis, [num_kv_heads, group * n, head_dim].
        s = self.spec
        group, n = s.num_heads // s.num_kv_heads, q.shape[1]
        q = q.reshape(s.num_kv_heads, group * n, s.head_dim)
        m = None if prep.mask is None else prep.mask.repeat(group, 1)
        out = F.scaled_dot_product_attention(q[None], keys[None], values[None], attn_mask=m,
                                             scale=self.scale)[0]
        return out.reshape(s.num_heads, n, s.head_dim)

    def _scores(self, q: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        group = self.spec.num_heads // self.spec.num_kv_heads
        scores = (q.float() @ keys.float().repeat_interleave(group, 0).transpose(1, 2)) * self.scale
        return scores.masked_fill(~mask, float("-inf"))
