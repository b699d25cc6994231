"""Peak memory of one request, measured the way each device allows.

CUDA: growth of `torch.cuda.max_memory_allocated` over what was allocated at the start (live
tensors only). CPU on Linux: growth of the process's peak resident set (VmHWM, reset through
/proc/self/clear_refs) over its resident set at the start, measured *cold*: the engine's spare
KV memory is dropped and glibc's free heap handed back first, so the request's own KV buffer,
its activations and whatever it leaves behind (prefix caching's copy) are all counted once.
Elsewhere: None.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from pathlib import Path

import torch

from engine import Engine

_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def peak_bytes(engine: Engine, request: Callable[[], object]) -> int | None:
    """Run `request()` once and return its peak memory in bytes (None where unmeasurable)."""
    device = engine.model.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        request()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    if device.type != "cpu" or not _STATUS.exists():
        return None
    engine.model.kv_memory.clear()
    _trim_heap()
    try:
        _CLEAR_REFS.write_text("5")  # VmHWM := VmRSS
    except OSError:
        return None
    start = _status_kib("VmRSS")
    request()
    return (_status_kib("VmHWM") - start) * 1024


def _status_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M).group(1))


def _trim_heap() -> None:
    """Give glibc's free heap back to the system, so reusing it shows as growth (glibc only)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
