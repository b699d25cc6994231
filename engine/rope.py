"""Rotary position embedding: inverse frequencies, rotation at positions, re-rotation.

Keys are cached *before* RoPE (as EPIC and CacheBlend do), so moving a chunk to another global
position is one rotation at its new positions, computed in fp32 and cast once: no rotation
error accumulates in bf16 storage.
"""

from __future__ import annotations

import math

import torch

SUPPORTED_ROPE_TYPES = ("default", "llama3")


def rope_parameters(hf_config) -> dict:
    """The RoPE parameters of a transformers config (5.x `rope_parameters`, 4.x `rope_scaling`)."""
    params = dict(getattr(hf_config, "rope_parameters", None) or {})
    if not params:
        params = dict(getattr(hf_config, "rope_scaling", None) or {})
        params.setdefault("rope_theta", getattr(hf_config, "rope_theta", 10000.0))
    params.setdefault("rope_type", params.get("type", "default"))
    return params


def check_supported(params: dict) -> None:
    """Refuse RoPE variants we do not implement: running them silently wrong is worse."""
    rope_type = params["rope_type"]
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ValueError(f"unsupported RoPE type {rope_type!r}: EPIC Lab implements "
                         f"{', '.join(SUPPORTED_ROPE_TYPES)}")
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        raise ValueError("unsupported RoPE: partial_rotary_factor != 1.0")


def inv_freq(params: dict, head_dim: int) -> torch.Tensor:
    """Inverse frequencies, fp32, shape [head_dim // 2]."""
    base = float(params["rope_theta"])
    freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if params["rope_type"] == "default":
        return freq
    # Llama 3.1: divide low frequencies by `factor`, keep high ones, interpolate in between.
    factor = params["factor"]
    low, high = params["low_freq_factor"], params["high_freq_factor"]
    old_len = params["original_max_position_embeddings"]
    wavelen = 2 * math.pi / freq
    scaled = torch.where(wavelen > old_len / low, freq / factor, freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = ~(wavelen < old_len / high) & ~(wavelen > old_len / low)
    return torch.where(medium, smoothed, scaled)


class Rope:
    """cos/sin tables for positions; `rotate` applies them to [..., T, head_dim] tensors."""

    def __init__(self, params: dict, head_dim: int, device: torch.device) -> None:
        check_supported(params)
        self.inv_freq = inv_freq(params, head_dim).to(device)

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions: [T] int -> cos, sin: [T, head_dim] fp32."""
        freqs = positions.to(self.inv_freq.device, torch.float32)[:, None] * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: [..., T, head_dim] in any dtype; rotated in fp32, returned in x's dtype."""
        xf = x.float()
        half = xf.shape[-1] // 2
        rotated_half = torch.cat((-xf[..., half:], xf[..., :half]), dim=-1)
        return (xf * cos + rotated_half * sin).to(x.dtype)

    @staticmethod
    def rotate_into(dst: torch.Tensor, x: torch.Tensor, cos: torch.Tensor,
                    sin: torch.Tensor) -> None:
        """dst = rotate(x, cos, sin), written in place. For fp32 it works half by half with no
        temporaries (cos and sin repeat across the halves): the gather of a long linked prompt
        is memory-bound, and this halves its traffic."""
        if x.dtype != torch.float32 or dst.dtype != torch.float32:
            dst.copy_(Rope.rotate(x, cos, sin))
            return
        half = x.shape[-1] // 2
        c, s = cos[:, :half], sin[:, :half]
        x1, x2 = x[..., :half], x[..., half:]
        d1, d2 = dst[..., :half], dst[..., half:]
        torch.mul(x1, c, out=d1)
        d1.addcmul_(x2, s, value=-1.0)
        torch.mul(x2, c, out=d2)
        d2.addcmul_(x1, s)

    def rotate_at(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Rotate x: [..., T, head_dim] (before RoPE) to the given positions: [T]."""
        cos, sin = self.cos_sin(positions)
        return self.rotate(x, cos, sin)
