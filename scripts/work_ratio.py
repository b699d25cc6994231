"""The work each algorithm's final pass does, counted exactly, for the speed sweep's prompt
shape: the positions it computes and the attention products (query, key) they need, and those
the block plan (engine/attention.py) computes. A time ratio between two algorithms cannot beat
their work ratio where attention of a few rows is compute-bound (a CPU).

    .venv/bin/python scripts/work_ratio.py [--chunk-tokens 350 --head 36 --tail 22]
"""

from __future__ import annotations

import argparse

import torch

from bench.text import sweep_budget
from engine.runtime import CALL_PRODUCTS, plan_blocks


def positions(head: int, starts: list[int], k: int, chunk: int, total: int,
              tail: int) -> torch.Tensor:
    """The head, the first k positions of every chunk, the tail: [n], sorted."""
    chosen = list(range(head)) + [s + j for s in starts for j in range(min(k, chunk))]
    return torch.tensor(chosen + list(range(total - tail, total)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk-tokens", type=int, default=350)
    parser.add_argument("--head", type=int, default=36, help="prefix tokens, template included")
    parser.add_argument("--tail", type=int, default=22, help="question tokens, template included")
    args = parser.parse_args()
    head, tail = args.head, args.tail
    print("| tokens | full / legolink-16: positions, needed products, planned products "
          "| legolink-2 / naive: positions, needed products |")
    print("|---|---|---|")
    for length in (1024, 2048, 4096, 8192):
        budget, num_chunks = sweep_budget(length, head + tail, args.chunk_tokens)
        chunk = budget // num_chunks
        starts = [head + i * chunk for i in range(num_chunks)]
        total = head + num_chunks * chunk + tail
        work = {}
        for k in (0, 2, 16):  # naive, legolink-2, legolink-16
            p = positions(head, starts, k, chunk, total, tail)
            plan = plan_blocks(p, total, CALL_PRODUCTS["cpu"])
            work[k] = (len(p), int((p + 1).sum()), plan.products)
        full = (total, total * (total + 1) // 2)
        print(f"| {total:,} | {full[0] / work[16][0]:.1f}x, {full[1] / work[16][1]:.1f}x, "
              f"{full[1] / work[16][2]:.1f}x | {work[2][0] / work[0][0]:.1f}x, "
              f"{work[2][1] / work[0][1]:.1f}x |")


if __name__ == "__main__":
    main()
