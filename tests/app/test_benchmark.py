"""Benchmark tab handlers on the tiny model: small accuracy and speed runs, their files."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from app.benchmark import (
    ACCURACY_COLUMNS,
    SPEED_COLUMNS,
    algorithm_specs,
    bench_accuracy,
    bench_speed,
)
from app.examples import BENCH_DATASETS

HOTPOT = "HotpotQA sample (5 examples)"


def test_algorithm_specs_carry_the_ui_parameters(engine):
    specs = algorithm_specs(engine, ["legolink", "naive", "cacheblend"], 8, 0.25)
    assert [s.label for s in specs] == ["naive", "cacheblend-25", "legolink-8"]


def test_bench_accuracy_runs_and_leaves_the_store_as_it_was(engine):
    engine.compile("kept chunk", "kept")
    before = {c.key for c in engine.store.stats().chunks}
    figure, table, summary, files = bench_accuracy(engine, HOTPOT, 1, ["naive", "legolink"], 4,
                                                   0.15, 2)
    assert list(table.columns) == ACCURACY_COLUMNS
    assert list(table["algorithm"]) == ["full_recompute", "naive", "legolink-4"]
    assert table.iloc[0]["first_token_kl"] == 0.0 and table.iloc[0]["agreement"] == 1.0
    assert summary.startswith("**1** example(s) of hotpotqa")
    assert "chunks capped to the first 2 in 1 of 1 examples" in summary
    assert [Path(f).name for f in files] == ["accuracy.json", "accuracy.html"]
    saved = json.loads(Path(files[0]).read_text())
    assert saved["n"] == 1 and list(saved["algorithms"]) == list(table["algorithm"])
    assert "plotly" in Path(files[1]).read_text()[:20000].lower()
    assert figure.data[0].text == ("full_recompute", "naive", "legolink-4")
    assert {c.key for c in engine.store.stats().chunks} == before


def test_bench_speed_one_length(engine):
    figure, table, summary, files = bench_speed(engine, [256], 1, ["naive"], 16, 0.15)
    assert list(table.columns) == SPEED_COLUMNS
    assert list(table["algorithm"]) == ["full_recompute", "naive"]
    assert table.iloc[0]["ratio to full_recompute"] == 1.0
    assert table.iloc[1]["ratio to naive"] == 1.0
    assert [t.name for t in figure.data] == ["full_recompute", "naive", "HF prefill"]
    assert summary.startswith("Medians of 1 repeat(s)")
    assert json.loads(Path(files[0]).read_text())["lengths"] == [256]


@pytest.mark.parametrize(("call", "message"), [
    (lambda e: bench_accuracy(e, "mnist", 1, ["naive"], 4, 0.1, 2), "unknown dataset 'mnist'"),
    (lambda e: bench_accuracy(e, HOTPOT, 9, ["naive"], 4, 0.1, 2),
     "examples must be an integer in [1, 5], got 9"),
    (lambda e: bench_accuracy(e, HOTPOT, 1, [], 4, 0.1, 2), "choose at least one algorithm"),
    (lambda e: bench_speed(e, [], 1, ["naive"], 4, 0.1), "choose at least one context length"),
    (lambda e: bench_speed(e, [300], 1, ["naive"], 4, 0.1), "length 300 is not offered"),
    (lambda e: bench_speed(e, [256], 9, ["naive"], 4, 0.1),
     "repeats must be an integer in [1, 5], got 9"),
])
def test_benchmark_refusals(engine, call, message):
    with pytest.raises(gr.Error) as err:
        call(engine)
    assert err.value.message.startswith(message)


def test_bundled_datasets_exist_and_parse():
    from bench.data import examples_from_jsonl

    for path in BENCH_DATASETS.values():
        examples = examples_from_jsonl(path)
        assert len(examples) == 5
        assert all(e["task"] == "qa" and e["answers"] for e in examples)
