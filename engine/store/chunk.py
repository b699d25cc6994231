"""A compiled chunk (`ChunkKV`) and what every chunk of one store shares (`ChunkFormat`).

A chunk is compiled on its own at positions 0..T-1. Its key hashes (model id, dtype,
token ids, compile variant) and nothing else — no prefix chain — which is what makes the cache
position-independent: the same text is stored once per compile variant, whatever surrounds it
later. `chunk_key` is the one place the key is built.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import torch


def chunk_key(model_id: str, dtype_name: str, token_ids: list[int] | tuple[int, ...],
              variant: str = "", salt: str = "") -> str:
    """The content key: a hash of (model id, dtype, token ids, compile variant, salt), with no
    prefix chain. The default variant ("") and no salt add nothing, so their keys are those of
    a content-only key; another variant of the same text never shares a key with it, nor does
    the same text under another salt (one per owner: one owner's compile never tells whether
    another compiled that text)."""
    ids = ",".join(map(str, token_ids))
    text = (f"{model_id}|{dtype_name}|{ids}" + (f"|variant={variant}" if variant else "")
            + (f"|{salt}" if salt else ""))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ChunkFormat:
    """What every chunk of one store shares: the model that compiled it and its KV layout."""

    model_id: str
    dtype: torch.dtype
    device: torch.device
    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int = 0  # token ids must be below it (0: unknown, ids are not checked)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def bytes_per_token(self) -> int:
        """Exact K+V bytes one token occupies over all layers."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * self.dtype.itemsize

    def check(self, token_ids: tuple[int, ...], max_tokens: int, budget_bytes: int) -> None:
        """A ValueError with a message unless these token ids may be compiled into a store
        of `max_tokens` per chunk and `budget_bytes` in all."""
        if not token_ids:
            raise ValueError("cannot compile an empty chunk")
        if len(token_ids) > max_tokens:
            raise ValueError(f"chunk has {len(token_ids)} tokens, over the limit of {max_tokens}")
        num_bytes = len(token_ids) * self.bytes_per_token
        if num_bytes > budget_bytes:
            raise ValueError(f"chunk needs {num_bytes} bytes of KV, over the store budget of "
                             f"{budget_bytes} bytes")
        if self.vocab_size and not all(0 <= i < self.vocab_size for i in token_ids):
            raise ValueError(f"token ids outside the vocabulary [0, {self.vocab_size})")

    def shape(self, num_tokens: int) -> tuple[int, int, int, int]:
        return (self.num_layers, self.num_kv_heads, num_tokens, self.head_dim)

    def key_for(self, token_ids: list[int] | tuple[int, ...], variant: str = "",
                salt: str = "") -> str:
        """The key of these token ids compiled as `variant` ("" the default) under `salt`
        ("" for text anyone may share): `chunk_key`."""
        return chunk_key(self.model_id, self.dtype_name, token_ids, variant, salt)


@dataclass
class ChunkKV:
    """One compiled chunk.

    # k, v: [num_layers, num_kv_heads, T, head_dim]; k before RoPE, compiled at positions 0..T-1
    # (a compile variant puts tokens before the chunk and drops their K/V: still T rows)
    """

    key: str
    title: str
    token_ids: tuple[int, ...]
    k: torch.Tensor
    v: torch.Tensor
    hits: int = 0
    last_used: float = field(default_factory=time.time)
    variant: str = ""  # the compile variant's name (engine.link.CompileVariant), "" the default
    salt: str = ""  # part of the key (ChunkFormat.key_for): "" for text anyone may share

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_bytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()
