"""Attention by position, without work on keys a query cannot see.

A forward computes a set of positions; the query at position p sees the keys at positions
0..p. Sorted, the positions fall into runs of consecutive positions. The *block plan* groups
the runs into blocks whose rows attend to the key prefix up to the block's last position, each
with the cheapest fused SDPA call that gives every row exactly its keys:

  CAUSAL  a run from position 0 (prefill, compile, a prompt's head): SDPA's causal prefill.
  PADDED  a run a..e-1 whose head a is short next to its length: a zero queries in front make
          it a causal prefill over keys 0..e-1 (prefix caching's suffix); their outputs are
          dropped, the a²/2 products they cost are the waste.
  FULL    a single row (decoding; a query that sees every key of its block): no mask.
  MASKED  anything else (LegoLink's chunk heads, CacheBlend's scattered tokens, a question at
          the end of a long prompt): an additive mask over the block's keys only.

Blocks are chosen by counting (query, key) products: a plan pays for the products its calls
compute plus a fixed price per call, and adjacent blocks merge when one call is cheaper than
two. Long MASKED runs are cut into sub-blocks so that the triangle they waste stays small.
The plan is made once per batch from host data, so the layer loop never reads the device.
Grouped-query attention never copies K/V per query head: the causal kinds use SDPA's
`enable_gqa`, the others fold the query heads sharing a KV head into the query axis.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import Enum

import torch
import torch.nn.functional as F

# What one more SDPA call costs, counted in (query, key) products. On this CPU a call costs
# ~30 us (the time of ~1,000 of SmolLM2's 9-head products), and a small block computes each
# product at about half the speed of a large one, so merging pays earlier: 4,096 timed best
# on LegoLink and CacheBlend plans at 2K and 8K tokens. On a GPU a launch is worth far more.
CALL_PRODUCTS = {"cpu": 4096, "cuda": 1 << 20}


class BlockKind(Enum):
    CAUSAL = "causal"
    PADDED = "padded"
    FULL = "full"
    MASKED = "masked"


@dataclass(frozen=True)
class Block:
    """Rows row_start..row_end-1 of the position-sorted batch, attending to keys 0..num_keys-1
    (num_keys = the last row's position + 1); first_position is the first row's position."""

    kind: BlockKind
    row_start: int
    row_end: int
    first_position: int
    num_keys: int

    @property
    def num_rows(self) -> int:
        return self.row_end - self.row_start

    @property
    def products(self) -> int:
        """(query, key) products its SDPA call computes, masked ones included."""
        if self.kind in (BlockKind.CAUSAL, BlockKind.PADDED):
            return self.num_keys * (self.num_keys + 1) // 2
        return self.num_rows * self.num_keys


@dataclass(frozen=True, eq=False)
class BlockPlan:
    """How a batch's queries attend: its blocks, in position order.

    # order: [n] int64 on the host, the batch row of each sorted row; None when already sorted
    run_start: the positions are the one run run_start..run_start+n-1 (K/V written as a slice)
    """

    blocks: tuple[Block, ...]
    order: torch.Tensor | None
    run_start: int | None
    _device_cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def products(self) -> int:
        return sum(b.products for b in self.blocks)


def call_products(device: torch.device | str) -> int:
    """The price of one SDPA call on this device, in (query, key) products."""
    return CALL_PRODUCTS.get(torch.device(device).type, CALL_PRODUCTS["cuda"])


def plan_run(start: int, n: int, call_products: int) -> BlockPlan:
    """The block plan of the one run start..start+n-1 (no positions to read)."""
    if n < 1:
        raise ValueError("a batch needs at least one position")
    blocks = _run_blocks(start, 0, n, _split_rows(call_products))
    return BlockPlan(_merged(blocks, call_products), None, start)


def plan_blocks(positions: torch.Tensor, num_keys: int, call_products: int) -> BlockPlan:
    """The block plan of distinct positions ([n] int on the host) seeing keys < num_keys."""
    n = positions.shape[0]
    if n == 0:
        raise ValueError("a batch needs at least one position")
    pos = positions.tolist()
    order = None
    if any(a >= b for a, b in itertools.pairwise(pos)):
        order = torch.tensor(sorted(range(n), key=pos.__getitem__), dtype=torch.int64)
        pos = [pos[i] for i in order.tolist()]
        if any(a == b for a, b in itertools.pairwise(pos)):
            raise ValueError("a batch's positions must be distinct")
    if pos[0] < 0 or pos[-1] >= num_keys:
        raise ValueError(f"positions must lie in 0..{num_keys - 1} (the keys they may see)")
    if order is None and pos[-1] - pos[0] == n - 1:
        return plan_run(pos[0], n, call_products)
    split, blocks, r0 = _split_rows(call_products), [], 0
    for r1 in range(1, n + 1):  # maximal runs of consecutive positions: rows r0..r1-1
        if r1 == n or pos[r1] != pos[r1 - 1] + 1:
            blocks += _run_blocks(pos[r0], r0, r1, split)
            r0 = r1
    return BlockPlan(_merged(blocks, call_products), order, None)


def _split_rows(call_products: int) -> int:
    """Rows per MASKED sub-block: each wastes rows²/2 products, each call costs call_products."""
    return max(1, round(math.sqrt(2 * call_products)))


def _run_blocks(a: int, r0: int, r1: int, split: int) -> list[Block]:
    """The cheapest blocks for one run of positions a..a+(r1-r0)-1 at rows r0..r1-1."""
    m = r1 - r0
    if a == 0:
        return [Block(BlockKind.CAUSAL, r0, r1, 0, m)]
    if m == 1:
        return [Block(BlockKind.FULL, r0, r1, a, a + 1)]
    # PADDED wastes a²/2 products; MASKED sub-blocks of `split` rows waste split/2 per row.
    if a * a <= m * split:
        return [Block(BlockKind.PADDED, r0, r1, a, a + m)]
    blocks = []
    for s0 in range(r0, r1, split):
        s1 = min(s0 + split, r1)
        kind = BlockKind.MASKED if s1 - s0 > 1 else BlockKind.FULL
        blocks.append(Block(kind, s0, s1, a + s0 - r0, a + s1 - r0))
    return blocks


def _merged(blocks: list[Block], call_products: int) -> tuple[Block, ...]:
    """Merge neighbours, left to right, while one call costs less than two."""
    out = [blocks[0]]
    for nxt in blocks[1:]:
        cur = out[-1]
        merged = Block(BlockKind.MASKED, cur.row_start, nxt.row_end, cur.first_position,
                       nxt.num_keys)
        if merged.products <= cur.products + nxt.products + call_products:
            out[-1] = merged
        else:
            out.append(nxt)
    return tuple(out)


class Attention:
    """One forward's attention: the plan's device tensors (row order, masks, padded queries),
    made once and used by every layer.

    # q: [num_heads, n, head_dim] in batch row order; keys, values: [num_kv_heads, >= e, head_dim]
    # out: [n, num_heads, head_dim], written row by row (what o_proj reads)
    """

    def __init__(self, plan: BlockPlan, positions: torch.Tensor, num_heads: int,
                 num_kv_heads: int, head_dim: int, scale: float, dtype: torch.dtype) -> None:
        self.plan, self.scale = plan, scale
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.group = num_heads // num_kv_heads
        device = self.device = positions.device
        self.dtype = dtype
        cache = plan._device_cache
        key = (device, dtype, self.group)
        if key not in cache:  # a batch run layer by layer builds these once
            cache[key] = self._device_tensors(positions, dtype)
        self.order, self.masks = cache[key]
        n = positions.shape[0]
        # A PADDED first block gets its queries rotated straight behind its zero rows.
        first = plan.blocks[0]
        self.pad = None
        if first.kind is BlockKind.PADDED and self.order is None:
            self.pad = torch.zeros(num_heads, first.first_position + n, head_dim, dtype=dtype,
                                   device=device)

    def _device_tensors(self, positions: torch.Tensor, dtype: torch.dtype):
        plan, device = self.plan, positions.device
        order = None if plan.order is None else plan.order.to(device)
        sorted_pos = positions if order is None else positions[order]
        masks = []
        for b in plan.blocks:
            if b.kind is not BlockKind.MASKED:
                masks.append(None)
                continue
            key_pos = torch.arange(b.num_keys, device=device)
            visible = key_pos[None, :] <= sorted_pos[b.row_start:b.row_end, None]
            mask = torch.zeros(visible.shape, dtype=dtype, device=device)
            mask.masked_fill_(~visible, float("-inf"))
            masks.append(mask.repeat(self.group, 1))  # folded rows: (group, row)
        return order, masks

    def query_buffer(self, n: int) -> torch.Tensor:
        """Where every layer writes its rotated queries: [num_heads, n, head_dim]."""
        if self.pad is not None:
            return self.pad[:, self.plan.blocks[0].first_position:]
        return torch.empty(self.num_heads, n, self.head_dim, dtype=self.dtype,
                           device=self.device)

    def __call__(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                 out: torch.Tensor) -> None:
        for block, mask in zip(self.plan.blocks, self.masks, strict=True):
            o = self._block(block, mask, q, keys[:, :block.num_keys], values[:, :block.num_keys])
            o = o.transpose(0, 1)  # [rows, num_heads, head_dim]
            if self.order is None:
                out[block.row_start:block.row_end] = o
            else:
                out.index_copy_(0, self.order[block.row_start:block.row_end], o)

    def _block(self, block: Block, mask: torch.Tensor | None, q: torch.Tensor,
               keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """-> [num_heads, rows, head_dim]"""
        rows = slice(block.row_start, block.row_end)
        qb = q[:, rows] if self.order is None else q.index_select(1, self.order[rows])
        if block.kind is BlockKind.CAUSAL:
            return F.scaled_dot_product_attention(qb[None], keys[None], values[None],
                                                  is_causal=True, scale=self.scale,
                                                  enable_gqa=True)[0]
        if block.kind is BlockKind.PADDED:
            a = block.first_position
            if self.pad is not None and block.row_start == 0:
                padded = self.pad[:, :block.num_keys]  # the queries are already in place
            else:
                padded = qb.new_zeros(self.num_heads, block.num_keys, self.head_dim)
                padded[:, a:] = qb
            o = F.scaled_dot_product_attention(padded[None], keys[None], values[None],
                                               is_causal=True, scale=self.scale,
                                               enable_gqa=True)[0]
            return o[:, a:]
        # FULL and MASKED: [num_kv_heads, group * rows, head_dim], rows ordered (group, row).
        m = block.num_rows
        folded = qb.reshape(self.num_kv_heads, self.group * m, self.head_dim)
        o = F.scaled_dot_product_attention(folded[None], keys[None], values[None],
                                           attn_mask=mask, scale=self.scale)[0]
        # reshape, not view: CUDA's fused kernels return o in [rows, heads, head_dim] memory
        # order (a transposed view), which the (group, row) fold cannot view (GPU check).
        return o.reshape(self.num_heads, m, self.head_dim)
