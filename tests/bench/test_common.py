"""The benchmarks' shared pieces: round orders and the speed sweep's sizing (bench/common.py,
bench/text.py)."""

from __future__ import annotations

from bench.common import rotated
from bench.text import OVERHEAD_MARGIN, sweep_budget


def test_each_round_starts_at_the_next_item():
    items = ["a", "b", "c"]
    firsts = [rotated(items, r)[0] for r in range(4)]
    assert firsts == ["a", "b", "c", "a"], "no item may always run first"
    assert all(sorted(rotated(items, r)) == items for r in range(4)), "every item, once"


def test_the_sweep_leaves_room_for_the_prefix_question_and_one_token():
    budget, num_chunks = sweep_budget(1024, 40, 350)
    assert budget == 1024 - 1 - 40 - OVERHEAD_MARGIN and num_chunks == 3
    assert sweep_budget(10, 40, 350) == (1, 1), "a length too short still gets one token"
