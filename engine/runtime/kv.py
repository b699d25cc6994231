"""A request's K/V buffers, and the memory they live in.

On a CPU, fresh memory is not free: the kernel maps and zeroes every page on first touch, and a
linked 8K-token prompt's buffers (380 MB for SmolLM2 in fp32) cost about as much to fault in as
to fill. `KVMemory` keeps the last request's buffers and gives their memory to the next one once
nothing refers to them any more; on a GPU the caching allocator already does this.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# How many tensors share a storage (torch's own test for "still in use", as its CUDA-graph
# trees use it); without it no memory is reused.
_use_count = getattr(torch._C, "_storage_Use_Count", None)
SPARE_STEP = 512  # spare buffers are made a multiple of this many positions long


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


class KVMemory:
    """One spare pair of K/V tensors, lent out as views of their first `capacity` positions.

    A view keeps its storage's use count up, so the pair is lent again only when every view of
    it (the last request's buffer, any slice taken from it) is gone: nothing still reading it
    can see it overwritten. Otherwise, and for a larger capacity, fresh tensors are made, and
    they become the spare.
    """

    def __init__(self, num_layers: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        self.shape = (num_layers, num_kv_heads, head_dim)
        self.dtype, self.device = dtype, device
        self._spare: tuple[torch.Tensor, torch.Tensor] | None = None

    def new(self, capacity: int, reuse: bool) -> KVBuffer:
        """Uninitialised K/V for `capacity` positions; reuse=False always maps fresh memory
        (for buffers that outlive the request, as a compiled chunk's V does)."""
        if not (reuse and self.device.type == "cpu" and _use_count is not None):
            return KVBuffer(self._empty(capacity), self._empty(capacity))
        spare = self._spare
        if spare is None or spare[0].shape[2] < capacity or not all(map(_unused, spare)):
            room = -(-capacity // SPARE_STEP) * SPARE_STEP  # the next prompt may be a bit longer
            spare = self._spare = (self._empty(room), self._empty(room))
        return KVBuffer(spare[0][:, :, :capacity], spare[1][:, :, :capacity])

    def clear(self) -> None:
        """Drop the spare: its memory goes back once the last request's buffer does."""
        self._spare = None

    def _empty(self, capacity: int) -> torch.Tensor:
        layers, heads, head_dim = self.shape
        return torch.empty(layers, heads, capacity, head_dim, dtype=self.dtype,
                           device=self.device)


def _unused(t: torch.Tensor) -> bool:
    """True when `t` is the only tensor on its storage (the temporary storage object counts 1)."""
    return _use_count(t.untyped_storage()._cdata) == 2
