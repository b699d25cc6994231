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
    """cos/sin tables, cached for positions 0..P-1; `rotate` applies them to [..., T, head_dim]."""

    def __init__(self, params: dict, head_dim: int, device: torch.device) -> None:
        check_supported(params)
        self.inv_freq = inv_freq(params, head_dim).to(device)
        empty = torch.empty(0, head_dim // 2, device=device)
        self._table = (empty, empty)  # cos, sin: [P, head_dim // 2] fp32, grown on demand

    def table(self, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin at positions 0..end-1 for each frequency: [end, head_dim // 2] fp32 (the two
        halves of a head share them). Computed as Hugging Face does, once, then sliced."""
        cos, sin = self._table
        if end > cos.shape[0]:
            size = max(end, 2 * cos.shape[0], 1024)
            freqs = torch.arange(size, device=self.inv_freq.device, dtype=torch.float32)
            freqs = freqs[:, None] * self.inv_freq
            cos, sin = freqs.cos(), freqs.sin()
            self._table = (cos, sin)
        return cos[:end], sin[:end]

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: [..., T, head_dim] in any dtype; cos, sin: [T, head_dim] (or [T, head_dim // 2]);
        rotated in fp32, returned in x's dtype."""
        xf = x.float()
        half = xf.shape[-1] // 2
        if cos.shape[-1] == half:
            cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
        rotated_half = torch.cat((-xf[..., half:], xf[..., :half]), dim=-1)
        return (xf * cos + rotated_half * sin).to(x.dtype)

    @staticmethod
    def rotate_into(dst: torch.Tensor, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                    scratch: torch.Tensor | None = None) -> None:
        """dst = rotate(x, cos, sin), written in place, rounded exactly as `rotate` (and Hugging
        Face) round; cos, sin: [T, head_dim // 2]. For fp32 it works half by half through one
        half-size scratch tensor (given, or made here) instead of `rotate`'s four full ones."""
        if x.dtype != torch.float32 or dst.dtype != torch.float32:
            dst.copy_(Rope.rotate(x, cos, sin))
            return
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        d1, d2 = dst[..., :half], dst[..., half:]
        if scratch is None:
            scratch = torch.empty(d1.shape, dtype=dst.dtype, device=dst.device)
        torch.mul(x1, cos, out=d1)  # x1·cos - x2·sin
        d1.sub_(torch.mul(x2, sin, out=scratch))
        torch.mul(x2, cos, out=d2)  # x2·cos + x1·sin
        d2.add_(torch.mul(x1, sin, out=scratch))
