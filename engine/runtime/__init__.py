"""The model runtime: weights loaded through `transformers`, our own layer-by-layer forward over
them, attention by position, RoPE and the per-request K/V memory.

The contract is `Model.forward(h, batch, kv, layers)`: compute the batch's positions, write their
K/V into `kv`, let their queries attend causally by position over the keys present. The runtime
knows no link algorithm and no store: both are built on this call.
"""

from engine.runtime.attention import CALL_PRODUCTS, BlockKind, BlockPlan, plan_blocks
from engine.runtime.kv import KVBuffer, KVMemory
from engine.runtime.loader import (
    BUNDLED_FILE,
    BUNDLED_ID,
    BUNDLED_MODEL,
    BUNDLED_PACKAGE,
    INSTALL_HINT,
    load_model,
)
from engine.runtime.model import Batch, ForwardOut, Model, ModelSpec, now_ms
from engine.runtime.rope import Rope

__all__ = [
    "BUNDLED_FILE",
    "BUNDLED_ID",
    "BUNDLED_MODEL",
    "BUNDLED_PACKAGE",
    "CALL_PRODUCTS",
    "INSTALL_HINT",
    "Batch",
    "BlockKind",
    "BlockPlan",
    "ForwardOut",
    "KVBuffer",
    "KVMemory",
    "Model",
    "ModelSpec",
    "Rope",
    "load_model",
    "now_ms",
    "plan_blocks",
]
