"""EngineConfig: the one frozen configuration passed down through the engine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.runtime import BUNDLED_MODEL
from engine.store import check_url

# On a Hugging Face Space the same model comes from the hub (listed in preload_from_hub).
SPACES_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _default_model() -> str:
    if os.environ.get("EPIC_MODEL"):
        return os.environ["EPIC_MODEL"]
    return SPACES_MODEL if os.environ.get("SPACE_ID") else BUNDLED_MODEL


def _default_cache_dir() -> str:
    return os.environ.get("EPIC_CACHE_DIR") or str(Path.home() / ".cache" / "epic-lab")


def _default_store_url() -> str:
    return os.environ.get("EPIC_STORE_URL", "").strip()


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs to know, chosen once.

    `device` and `dtype` accept "auto": CUDA with bfloat16 when a GPU is present, else CPU
    with float32. They are resolved in `__post_init__`, so every reader sees concrete values.
    """

    model: str = field(default_factory=_default_model)
    device: str = "auto"
    dtype: str = "auto"
    chunk_tokens: int = 512  # chunking budget per chunk
    max_context_tokens: int = 8192  # a linked prompt plus generation may not exceed this
    max_new_tokens: int = 256  # upper bound for one request's generation
    max_chunks_per_request: int = 64  # bounds a request's work (and its figures) by count too
    store_budget_bytes: int = 2 * 1024**3  # chunk KV kept in memory before LRU eviction
    prefix_cache_entries: int = 4  # earlier requests whose prompt KV prefix_cache keeps
    prefix_cache_budget_bytes: int = 512 * 1024**2  # and the bytes those copies may take
    cache_dir: str = field(default_factory=_default_cache_dir)  # converted-model cache
    # The shared chunk store replicas compile into and read from ("": this process only), e.g.
    # redis://127.0.0.1:6379/0; run that Redis with --maxmemory and allkeys-lru.
    store_url: str = field(default_factory=_default_store_url)
    # With a shared store: read the chunks other replicas compile into memory as they appear
    # (while the budget has room), so a first request on them is a local hit.
    store_prefetch: bool = True

    def __post_init__(self) -> None:
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available on this machine")
        if not (device == "cpu" or device.startswith("cuda")):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
        dtype = self.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {dtype!r}")
        object.__setattr__(self, "device", device)
        object.__setattr__(self, "dtype", dtype)
        if not self.model:
            raise ValueError("model must name the bundled model, a Hugging Face id or a path")
        check_url(self.store_url)
        for name in ("chunk_tokens", "max_context_tokens", "max_new_tokens",
                     "max_chunks_per_request", "store_budget_bytes", "prefix_cache_entries",
                     "prefix_cache_budget_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)
