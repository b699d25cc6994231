"""The benchmark command line: each command's own defaults."""

from __future__ import annotations

from bench.cli import parse_args
from bench.frontier import FRONTIER_ALGORITHMS
from engine import DEFAULT_ALGORITHMS


def test_each_command_takes_its_own_default_algorithms():
    # the frontier's settings once leaked into every command through the shared parent parser
    for command in ("speed", "accuracy --data x.jsonl", "needle --data x.jsonl"):
        args = parse_args([*command.split(), "--out", "o"])
        assert args.algorithms == ",".join(DEFAULT_ALGORITHMS), command
    frontier = parse_args(["frontier", "--data", "x.jsonl", "--out", "o"])
    assert frontier.algorithms == ",".join(FRONTIER_ALGORITHMS)
    chosen = parse_args(["speed", "--out", "o", "--algorithms", "naive"])
    assert chosen.algorithms == "naive", "an explicit choice is kept"
