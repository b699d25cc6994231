"""Give freed memory back to the operating system (glibc), so that the app's RSS stays flat.

A request's KV buffers and attention scores are tens of MB each, allocated and freed on the
queue's worker threads. glibc serves them from per-thread arenas once its dynamic mmap
threshold has risen past their size, and keeps the freed pages: RSS then grows with every
round of requests though nothing is held. Fixing the mmap threshold (which turns the dynamic
one off), capping the arenas and trimming after each model call returns those pages.
Elsewhere (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD_BYTES = 1024 * 1024  # a block this large or larger gets its own mapping
TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024
MAX_ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def return_freed_memory() -> bool:
    """Set glibc's allocator up to return freed memory (once, at start-up) -> whether it
    could (False where the C library is not glibc)."""
    libc = _libc()
    if libc is None:
        return False
    return all(libc.mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
        (M_ARENA_MAX, MAX_ARENAS)))


def trim() -> None:
    """Hand the free pages of every arena back to the operating system (after a model call)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
