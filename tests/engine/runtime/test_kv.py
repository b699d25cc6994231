"""KV memory: a request's buffer reuses an earlier one's memory only when nothing refers to it."""

from __future__ import annotations

import torch

from engine.runtime.kv import SPARE_STEP, KVMemory


def _memory() -> KVMemory:
    return KVMemory(2, 3, 8, torch.float32, torch.device("cpu"))


def _same_memory(a, b) -> bool:
    return a.k.data_ptr() == b.k.data_ptr() and a.v.data_ptr() == b.v.data_ptr()


def test_a_dropped_buffer_lends_its_memory_to_the_next_request():
    memory = _memory()
    first = memory.new(100, reuse=True)
    assert first.k.shape == (2, 3, 100, 8) and first.capacity == 100
    first.k.fill_(1.0)
    ptr = first.k.data_ptr()
    del first
    second = memory.new(90, reuse=True)
    assert second.k.data_ptr() == ptr, "nothing refers to the first buffer: reuse it"
    assert second.capacity == 90


def test_memory_in_use_is_never_lent_twice():
    memory = _memory()
    first = memory.new(100, reuse=True)
    second = memory.new(100, reuse=True)
    assert not _same_memory(first, second), "the first request still holds its buffer"
    del first
    third = memory.new(100, reuse=True)
    assert not _same_memory(second, third), "the spare is the second buffer, still held"


def test_a_slice_kept_from_a_buffer_keeps_its_memory_out_of_reuse():
    memory = _memory()
    first = memory.new(100, reuse=True)
    first.v.fill_(3.0)  # defined values: uninitialised memory may hold NaN, never equal to itself
    kept = first.v[:, :, :10]  # a view that outlives the buffer object (as a store might keep)
    kept_values = kept.clone()
    ptr = first.v.data_ptr()
    del first
    second = memory.new(100, reuse=True)
    assert second.v.data_ptr() != ptr, "a live view must keep the memory from being reused"
    second.v.fill_(7.0)
    assert torch.equal(kept, kept_values), "the kept slice was overwritten"


def test_a_longer_request_gets_fresh_memory_with_room_to_spare():
    memory = _memory()
    small = memory.new(100, reuse=True)
    ptr = small.k.data_ptr()
    del small
    big = memory.new(SPARE_STEP + 1, reuse=True)
    assert big.k.data_ptr() != ptr and big.capacity == SPARE_STEP + 1
    del big
    again = memory.new(2 * SPARE_STEP, reuse=True)
    assert again.capacity == 2 * SPARE_STEP, "the spare was rounded up to a whole step"


def test_buffers_made_without_reuse_are_never_lent():
    memory = _memory()
    kept = memory.new(50, reuse=False)  # e.g. a compiled chunk's V, kept by the store
    lent = memory.new(50, reuse=True)
    assert not _same_memory(kept, lent), "a buffer made without reuse became the spare"
    del lent
    assert not _same_memory(kept, memory.new(50, reuse=True))
