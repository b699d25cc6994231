"""Benchmark tab handlers on the tiny model: small accuracy and speed runs, their files."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pytest

from app import benchmark
from app.benchmark import (
    ACCURACY_COLUMNS,
    SPEED_COLUMNS,
    algorithm_specs,
    bench_accuracy,
    bench_speed,
)
from app.examples import BENCH_DATASETS
from app.lab import Lab
from app.limits import AppLimits
from visualize.notes import noise_note, zero_score_note

HOTPOT = "HotpotQA sample (5 examples)"
ME = "visitor-1"


def test_algorithm_specs_carry_the_ui_parameters(engine):
    specs = algorithm_specs(["legolink", "naive", "cacheblend"], {"k": 8, "ratio": 0.25})
    assert [s.label for s in specs] == ["naive", "cacheblend-25", "legolink-8"]


def test_bench_accuracy_runs_and_leaves_the_store_as_it_was(lab, engine):
    engine.compile("kept chunk", "kept")
    before = {c.key for c in engine.store.stats().chunks}
    figure, table, summary, files = bench_accuracy(lab, ME, HOTPOT, 1, ["naive", "legolink"], 4,
                                                   0.15, 2)
    assert list(table.columns) == ACCURACY_COLUMNS
    assert list(table["algorithm"]) == ["full_recompute", "naive", "legolink-4"]
    assert table.iloc[0]["first_token_kl"] == 0.0 and table.iloc[0]["agreement"] == 1.0
    assert summary.startswith("**1** example(s) of hotpotqa")
    assert "chunks capped to the first 2 in 1 of 1 examples" in summary
    # The reference's score 0 is explained where the table is shown (a random model's is 0).
    assert ("**Note:** " + zero_score_note({"full_recompute": {"score": 0.0}}) in summary) == (
        table.iloc[0]["score"] == 0), summary
    assert [Path(f).name for f in files] == ["accuracy.json", "accuracy.html"]
    saved = json.loads(Path(files[0]).read_text())
    assert saved["n"] == 1 and list(saved["algorithms"]) == list(table["algorithm"])
    assert "cdn.plot.ly" in Path(files[1]).read_text()[:20000].lower()
    assert [t.name for t in figure.data if t.showlegend] == ["full_recompute", "naive",
                                                             "legolink-4"]
    assert {c.key for c in engine.store.stats().chunks} == before
    # The visitor's files: only its latest run's, in its own directory, gone with it.
    directory = Path(files[0]).parent
    assert lab.libraries.get(ME).files == directory
    _, _, _, again = bench_accuracy(lab, ME, HOTPOT, 1, ["naive"], 4, 0.15, 1)
    assert not directory.exists() and Path(again[0]).exists()
    lab.libraries.release(ME)
    assert not Path(again[0]).parent.exists()


def test_bench_speed_one_length(lab):
    figure, table, summary, files = bench_speed(lab, ME, [256], 1, ["naive"], 16, 0.15)
    assert list(table.columns) == SPEED_COLUMNS
    assert list(table["algorithm"]) == ["full_recompute", "naive"]
    assert table.iloc[0]["ratio to full_recompute"] == 1.0
    assert table.iloc[1]["ratio to naive"] == 1.0
    assert [t.name for t in figure.data] == ["full_recompute", "naive", "HF prefill"]
    assert figure.data[-1].mode == "lines+markers"  # one length: a point, not an empty line
    assert list(figure.layout.xaxis.tickvals) == [table.iloc[0]["context tokens"]]
    assert list(table["asked"]) == [256, 256], "the length asked beside the one measured"
    measured = f"{table.iloc[0]['context tokens']:,} (256)"
    assert f"Context tokens as measured (asked): {measured}." in summary, summary
    assert summary.startswith("Medians of 1 repeat(s)")
    assert summary.endswith(f"**Note:** {noise_note(1)}"), "1 repeat: noise, said so"
    assert noise_note(1) in figure.layout.title.subtitle.text.replace("<br>", " ")
    assert json.loads(Path(files[0]).read_text())["lengths"] == [256]


@pytest.mark.parametrize(("call", "message"), [
    (lambda lab: bench_accuracy(lab, ME, "mnist", 1, ["naive"], 4, 0.1, 2),
     "unknown dataset 'mnist'"),
    (lambda lab: bench_accuracy(lab, ME, HOTPOT, 3, ["naive"], 4, 0.1, 2),
     "examples must be an integer in [1, 2], got 3"),
    (lambda lab: bench_accuracy(lab, ME, HOTPOT, 1, ["naive"], 4, 0.1, 7),
     "max chunks must be an integer in [1, 6], got 7"),
    (lambda lab: bench_accuracy(lab, ME, HOTPOT, None, ["naive"], 4, 0.1, 2),
     "examples must be an integer in [1, 2], got None"),
    (lambda lab: bench_accuracy(lab, ME, HOTPOT, 1, [], 4, 0.1, 2),
     "choose at least one algorithm"),
    (lambda lab: bench_accuracy(lab, ME, HOTPOT, 1, ["naive"], None, 0.1, 2),
     "recompute_k must be an integer in [0, 1024], got None"),
    (lambda lab: bench_speed(lab, ME, [], 1, ["naive"], 4, 0.1),
     "choose at least one context length"),
    (lambda lab: bench_speed(lab, ME, [300], 1, ["naive"], 4, 0.1), "length 300 is not offered"),
    (lambda lab: bench_speed(lab, ME, [2048], 1, ["naive"], 4, 0.1),
     "length must be an integer in [1, 1024], got 2048"),
    (lambda lab: bench_speed(lab, ME, [256], 3, ["naive"], 4, 0.1),
     "repeats must be an integer in [1, 2], got 3"),
    (lambda lab: bench_speed(lab, ME, [256], "2", ["naive"], 4, 0.1),
     "repeats must be an integer in [1, 2], got '2'"),
])
def test_benchmark_refusals_within_the_public_bounds(lab, call, message):
    """Issue 14: parameters that held the model 133-205 s are out of bounds here."""
    with pytest.raises(gr.Error) as err:
        call(lab)
    assert err.value.message.startswith(message)


def test_the_operator_widens_the_benchmark_bounds(engine):
    lab = Lab.open(engine, AppLimits(bench_length=2048, bench_repeats=5, bench_examples=5))
    assert benchmark.speed_lengths(lab) == [256, 512, 1024, 2048]
    with pytest.raises(gr.Error) as err:
        bench_speed(lab, ME, [256], 6, ["naive"], 4, 0.1)
    assert err.value.message == "repeats must be an integer in [1, 5], got 6"


def test_bundled_datasets_exist_and_parse():
    from bench.data import examples_from_jsonl

    for path in BENCH_DATASETS.values():
        examples = examples_from_jsonl(path)
        assert len(examples) == 5
        assert all(e["task"] == "qa" and e["answers"] for e in examples)


def test_the_measured_frontier_is_the_readmes_and_names_every_method():
    text = benchmark.measured_frontier()
    table = [line for line in text.splitlines() if line.startswith("|")]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "\n".join(table) in readme, "the Benchmark tab's table differs from the README's"
    for label in ("naive", "legolink-16", "legolink0", "cacheblend-15", "cacheblend-key-15",
                  "ape", "querylink-16", "prophetkv-16", "infoflow-16", "infoflow-fixed-16"):
        assert f"| `{label}` |" in text, label
    assert benchmark.MEASURED_FRONTIER_FIGURE.is_file()
