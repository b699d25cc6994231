"""The issue-21 frontier across tasks: read `python -m bench frontier` results, one per task,
and write the README's table (markdown, printed), one combined JSON and one HTML figure.

    .venv/bin/python scripts/frontier_table.py results/frontier21-hotpotqa ... --out DIR

Each input is a directory holding frontier.json (one context length each); a task given twice
takes the methods its first run lacks from the second (marked † in the table). The goal is
checked with bench.frontier.corner on every task: some method at most 1.2x naive's TTFT with a
KL at most legolink-16's, and some method at legolink-16's cost with half its KL on every task.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.frontier import (
    BUDGET_REFERENCE,
    FAST_TTFT_RATIO,
    HALF_KL,
    MATCH,
    MAX_TTFT_RATIO,
    corner,
    count_gap,
)
from bench.report import write_frontier_html


def load(directory: Path) -> tuple[str, dict[str, Any]]:
    """(task name, its one block) from a frontier result directory."""
    result = json.loads((directory / "frontier.json").read_text())
    block = next(iter(result["lengths"].values()))
    name = "needle" if result["needle"] else result["dataset"]
    return name, {**block, "model": result["model"], "device": result["device"], "extra": []}


def merged(loaded: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """One block per task: a later run of a task adds the methods the first lacks (marked
    `extra`: their TTFT was measured in that other run); KL, answers and scores are
    deterministic, the same in every run."""
    blocks: dict[str, dict[str, Any]] = {}
    for name, block in loaded:
        if name not in blocks:
            blocks[name] = block
            continue
        first = blocks[name]
        for label, row in block["algorithms"].items():
            if label not in first["algorithms"]:
                first["algorithms"][label] = row
                first["extra"].append(label)
    return blocks


def table(blocks: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown: one row per method, one cell per task (KL / median TTFT / answers equal to
    full recompute / task score), the recompute share of cached tokens last."""
    labels = list(dict.fromkeys(label for b in blocks.values() for label in b["algorithms"]))
    head = [f"{name}, {b['num_chunks']} chunks (n={b['n']}, {b['context_tokens_mean']:,.0f} "
            "tokens)" for name, b in blocks.items()]
    lines = ["| method | " + " | ".join(head) + " | recomputed |",
             "|---|" + "---|" * (len(blocks) + 1)]
    for label in labels:
        cells = []
        for b in blocks.values():
            r = b["algorithms"].get(label)
            mark = "†" if label in b["extra"] else ""
            cells.append("—" if r is None else f"{r['first_token_kl']:.3f} / "
                         f"{r['ttft_ms_median']:,.0f} ms{mark} / {r['agreement']:.0%} / "
                         f"{r['score']:.2f}")
        shares = [b["algorithms"][label]["recompute_share"] for b in blocks.values()
                  if label in b["algorithms"]]
        lines.append(f"| `{label}` | " + " | ".join(cells) +
                     f" | {min(shares):.1%}–{max(shares):.1%} |")
    return lines


def goal(blocks: dict[str, dict[str, Any]]) -> list[str]:
    """The goal, task by task, and whether it was met."""
    found = {name: corner(b["algorithms"]) for name, b in blocks.items()}
    lines = []
    for name, c in found.items():
        lines.append(f"- {name}: at most {FAST_TTFT_RATIO}x naive's TTFT "
                     f"({c['naive_ttft_ms']:,.0f} ms) with KL at most {BUDGET_REFERENCE}'s "
                     f"({c['budget_kl']:.3f}): {', '.join(c['fast']) or 'none'}; within "
                     f"{MAX_TTFT_RATIO}x {BUDGET_REFERENCE}'s TTFT ({c['budget_ttft_ms']:,.0f} "
                     f"ms) with at most {HALF_KL:g}x its KL: {', '.join(c['half']) or 'none'}")
    for name, b in blocks.items():
        rows, budget = b["algorithms"], b["algorithms"][BUDGET_REFERENCE]
        ratios = [f"{label} {row['first_token_kl'] / budget['first_token_kl']:.2f}x"
                  for label, row in rows.items() if label != BUDGET_REFERENCE
                  and count_gap(row, budget) <= MATCH]
        lines.append(f"- {name}, KL against {BUDGET_REFERENCE}'s at its recompute count: "
                     f"{', '.join(ratios)}")
    fast = set.intersection(*(set(c["fast"]) for c in found.values()))
    half = set.intersection(*(set(c["half"]) for c in found.values()))
    lines.append(f"- on every task: fast corner {', '.join(sorted(fast)) or 'none'}; half "
                 f"the KL at {BUDGET_REFERENCE}'s cost {', '.join(sorted(half)) or 'none'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    blocks = merged([load(d) for d in args.results])
    args.out.mkdir(parents=True, exist_ok=True)
    first = next(iter(blocks.values()))
    combined = {"benchmark": "frontier", "dataset": ", ".join(blocks), "model": first["model"],
                "device": first["device"],
                "lengths": {name: {**b, "title": name} for name, b in blocks.items()}}
    (args.out / "frontier.json").write_text(json.dumps(combined, indent=1))
    write_frontier_html(combined, args.out / "frontier.html")
    print("\n".join([*table(blocks), "", *goal(blocks)]))


if __name__ == "__main__":
    main()
