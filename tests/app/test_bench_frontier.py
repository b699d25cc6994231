"""The Benchmark tab's frontier handler on the tiny model (kept apart from test_benchmark.py so
the app's rework and this addition merge without touching each other)."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from app.benchmark import FRONTIER_COLUMNS, bench_frontier
from bench.frontier import FRONTIER_ALGORITHMS

HOTPOT = "HotpotQA sample (5 examples)"


def test_bench_frontier_table_figure_files(engine):
    before = {c.key for c in engine.store.stats().chunks}
    figure, table, summary, files = bench_frontier(engine, HOTPOT, 1, 2)
    assert list(table.columns) == FRONTIER_COLUMNS
    assert list(table["algorithm"]) == list(FRONTIER_ALGORITHMS)
    assert set(table["chunks"]) == {2}
    assert table.iloc[0]["first_token_kl"] == 0.0
    assert summary.startswith("**1** example(s) of hotpotqa")
    assert "**querylink-16** (the same recompute count as legolink-16)" in summary
    assert [Path(f).name for f in files] == ["frontier.json", "frontier.html"]
    saved = json.loads(Path(files[0]).read_text())
    assert saved["lengths"]["2"]["target"]["algorithm"] == "querylink-16"
    names = {t.name for t in figure.data}
    assert {"naive", "legolink", "cacheblend", "querylink", "full_recompute"} == names
    assert {c.key for c in engine.store.stats().chunks} == before


@pytest.mark.parametrize(("args", "message"), [
    (("mnist", 1, 2), "unknown dataset 'mnist'"),
    ((HOTPOT, 6, 2), "examples must be an integer in [1, 5], got 6"),
    ((HOTPOT, 1, 0), "max chunks must be an integer in [1, 20], got 0"),
])
def test_bench_frontier_refusals(engine, args, message):
    with pytest.raises(gr.Error) as err:
        bench_frontier(engine, *args)
    assert err.value.message.startswith(message)
