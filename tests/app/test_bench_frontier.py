"""The Benchmark tab's frontier handler on the tiny model, within the public benchmark bounds."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from app.benchmark import FRONTIER_COLUMNS, bench_frontier
from bench.frontier import FRONTIER_ALGORITHMS
from visualize.notes import noise_note, zero_score_note

HOTPOT = "HotpotQA sample (5 examples)"


ME = "visitor"


def test_bench_frontier_table_figure_files(lab):
    before = {c.key for c in lab.engine.store.stats().chunks}
    figure, table, summary, files = bench_frontier(lab, ME, HOTPOT, 1, 2)
    assert list(table.columns) == FRONTIER_COLUMNS
    assert list(table["algorithm"]) == list(FRONTIER_ALGORITHMS)
    assert set(table["chunks"]) == {2}
    assert table.iloc[0]["first_token_kl"] == 0.0
    assert summary.startswith("**1** example(s) of hotpotqa")
    assert "**querylink-16** (the same recompute count as legolink-16)" in summary
    assert [Path(f).name for f in files] == ["frontier.json", "frontier.html"]
    saved = json.loads(Path(files[0]).read_text())
    assert saved["lengths"]["2"]["target"]["algorithm"] == "querylink-16"
    names = {t.legendgroup for t in figure.data}
    assert {"naive", "legolink", "cacheblend", "querylink", "full_recompute", "legolink0",
            "ape", "cacheblend-key", "prophetkv", "infoflow"} == names
    assert "Lower-left corner" in summary, "the frontier's goal (issue 21) is in the summary"
    assert f"**Note:** {noise_note(1, 'example')}" in summary, "1 example: noise, said so"
    zero = zero_score_note(saved["lengths"]["2"]["algorithms"])
    assert (zero in summary) and (zero != "") == (table.iloc[0]["score"] == 0)
    assert {c.key for c in lab.engine.store.stats().chunks} == before


@pytest.mark.parametrize(("args", "message"), [
    (("mnist", 1, 2), "unknown dataset 'mnist'"),
    ((HOTPOT, 3, 2), "examples must be an integer in [1, 2], got 3"),  # the public bounds
    ((HOTPOT, 1, 0), "max chunks must be an integer in [1, 6], got 0"),
    ((HOTPOT, 1, 7), "max chunks must be an integer in [1, 6], got 7"),
])
def test_bench_frontier_refusals(lab, args, message):
    with pytest.raises(gr.Error) as err:
        bench_frontier(lab, ME, *args)
    assert err.value.message.startswith(message)
