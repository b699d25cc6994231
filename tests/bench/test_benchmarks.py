"""The benchmarks end to end on a tiny random Llama and a three-example file under tests/."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.accuracy import run_accuracy
from bench.cli import main
from bench.data import examples_from_jsonl, passages_from_examples
from bench.needle import NEEDLE, make_needle_examples, needle_score, run_needle
from bench.report import (
    ACCURACY_COLUMNS,
    write_accuracy_csv,
    write_accuracy_html,
    write_json,
    write_speed_html,
)
from bench.speed import FLOOR, SAME_PREFIX, run_speed, speed_targets
from engine import Engine

SAMPLE = Path(__file__).parent.parent / "data" / "bench_sample.jsonl"
ALGORITHMS = ("full_recompute", "naive", "cacheblend-15", "legolink-2", "legolink-16",
              "prefix_cache")


@pytest.fixture(scope="module")
def engine(tiny_engine_config) -> Engine:
    return Engine(tiny_engine_config)


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return examples_from_jsonl(SAMPLE)


def test_sample_file_is_small_and_valid(examples):
    assert len(examples) == 3
    assert all(1 <= len(e["chunks"]) <= 3 and e["task"] == "qa" for e in examples)


def test_needle_generator_is_seeded_and_places_the_needle(examples):
    passages = passages_from_examples(examples)
    first = make_needle_examples(passages, num_chunks=5, n=4, seed=3, chunk_words=40)
    assert first == make_needle_examples(passages, num_chunks=5, n=4, seed=3, chunk_words=40)
    assert first != make_needle_examples(passages, num_chunks=5, n=4, seed=4, chunk_words=40)
    for example in first:
        needle = NEEDLE.format(code=example["needle_code"])
        assert len(example["chunks"]) == 5 and example["answers"] == [str(example["needle_code"])]
        holders = [i for i, chunk in enumerate(example["chunks"]) if needle in chunk]
        assert holders == [example["needle_chunk"]]
        needle_words = len(needle.split())
        assert [len(c.split()) for c in example["chunks"]] == [
            40 + needle_words * (i == example["needle_chunk"]) for i in range(5)]
    code = first[0]["needle_code"]
    assert needle_score(first[0], f"The code is {code:,}.") == 1.0
    assert needle_score(first[0], "I do not know.") == 0.0


def test_accuracy_end_to_end(engine, examples, tmp_path):
    seen = []
    result = run_accuracy(engine, examples, ALGORITHMS, max_chunks=2, max_new_tokens=8,
                          progress=lambda f, text: seen.append(f))
    rows = result["algorithms"]
    assert list(rows) == list(ALGORITHMS)
    assert result["n"] == 3 and result["dataset"] == "hotpotqa" and result["task"] == "qa"
    assert result["chunks_note"] == "chunks capped to the first 2 in 3 of 3 examples"
    full = rows["full_recompute"]
    assert full["agreement"] == 1.0 and full["first_token_agreement"] == 1.0
    assert full["first_token_kl"] == 0.0 and full["recompute_share"] == 1.0
    assert rows["naive"]["recompute_share"] == 0.0
    assert 0 < rows["legolink-2"]["recompute_share"] < rows["legolink-16"]["recompute_share"]
    for row in rows.values():
        assert set(ACCURACY_COLUMNS[1:]) <= set(row)
        assert 0 <= row["score"] <= 1 and 0 <= row["agreement"] <= 1
        assert row["first_token_kl"] >= 0 and row["ttft_ms_median"] > 0
    assert [len(r["answers"]) for r in result["examples"]] == [6, 6, 6]
    assert all(r["num_chunks"] == 2 for r in result["examples"])
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert len(engine.store) == 0  # the benchmark's chunks were evicted after use

    loaded = json.loads(write_json(result, tmp_path / "a.json").read_text())
    assert loaded["algorithms"]["naive"] == pytest.approx(rows["naive"])
    with write_accuracy_csv(result, tmp_path / "a.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [r["algorithm"] for r in table] == list(ALGORITHMS)
    assert float(table[0]["agreement"]) == 1.0
    html = write_accuracy_html(result, tmp_path / "a.html").read_text()
    assert html.lower().startswith("<!doctype html>") and "plotly" in html and "legolink-16" in html


def test_needle_end_to_end(engine, examples):
    passages = passages_from_examples(examples)
    result = run_needle(engine, passages, num_chunks=(2, 3), limit=1,
                        algorithms="naive,legolink-4", chunk_words=20, max_new_tokens=4)
    assert list(result["sizes"]) == ["2", "3"]
    for block in result["sizes"].values():
        assert list(block["algorithms"]) == ["full_recompute", "naive", "legolink-4"]
        assert block["algorithms"]["full_recompute"]["first_token_kl"] == 0.0
        assert block["context_tokens_mean"] > 0
        assert all("needle_code" in r for r in block["examples"])


def test_speed_end_to_end(engine, tmp_path):
    result = run_speed(engine, lengths=(400, 600), repeats=1,
                       algorithms="naive,legolink-16,prefix_cache", chunk_tokens=96, requests=2,
                       pool_size=3, request_chunks=2)
    for length, block in result["sweep"].items():
        algos = {**block["algorithms"], FLOOR: block["floor"], SAME_PREFIX: block["same_prefix"]}
        assert list(block["algorithms"]) == ["full_recompute", "naive", "legolink-16",
                                             "prefix_cache"]
        assert algos["full_recompute"]["ttft_ratio_to_full_recompute"] == 1.0
        assert algos["naive"]["ttft_ratio_to_naive"] == 1.0
        assert all(a["ttft_ms_median"] > 0 for a in algos.values())
        assert block["hf_prefill_ms_median"] > 0 and block["num_chunks"] >= 1
        assert block["context_tokens"] < int(length), "the prompt and its token fit the length"
        assert algos["full_recompute"]["token_layers"] == 2 * block["context_tokens"]
        assert algos["naive"]["positions_computed"] < algos["legolink-16"]["positions_computed"]
        assert algos[FLOOR]["positions_computed"] == algos["naive"]["positions_computed"], (
            "the floor computes exactly what naive computes")
        assert algos[FLOOR]["gather_ms_median"] == 0.0
        same = algos[SAME_PREFIX]["positions_computed"]
        assert same < algos["naive"]["positions_computed"], "same prefix: only the question"
        for label, row in algos.items():
            peak = row["peak_memory_bytes"]
            assert (peak is None) == (label == FLOOR), f"{label}: peak memory {peak}"
    assert result["sweep"]["600"]["context_tokens"] > result["sweep"]["400"]["context_tokens"]
    throughput = result["throughput"]["algorithms"]
    assert throughput["full_recompute"]["ratio_to_full_recompute"] == 1.0
    kv = result["kv"]
    assert kv["bytes_per_token"] == 2 * 2 * 2 * 16 * 4  # layers, kv heads, head dim, fp32
    assert kv["bytes_match_formula"]
    assert result["compile"]["compile_tokens_per_s"] > 0
    names = {t["name"] for t in result["targets"]}
    assert {"TTFT naive / floor at 400", "TTFT prefix_cache / full_recompute at 600",
            f"TTFT {SAME_PREFIX} / full_recompute at 600",
            "throughput legolink-16 / full_recompute"} <= names, names
    assert not any(n.startswith("TTFT full_recompute / legolink-16") for n in names), (
        "the issue sets that target from 2K tokens on")
    assert len(engine.store) == 0
    json.loads(write_json(result, tmp_path / "s.json").read_text())
    assert "plotly" in write_speed_html(result, tmp_path / "s.html").read_text()


def test_speed_targets_follow_the_issue():
    def block(full: float, lego16: float, lego2: float, naive: float, floor: float,
              prefix: float, same: float) -> dict:
        rows = {"full_recompute": full, "legolink-16": lego16, "legolink-2": lego2,
                "naive": naive, "prefix_cache": prefix}
        return {"full_recompute_over_hf_prefill": 1.01,
                "algorithms": {k: {"ttft_ms_median": v} for k, v in rows.items()},
                "floor": {"ttft_ms_median": floor}, "same_prefix": {"ttft_ms_median": same}}

    result = {"sweep": {"1024": block(100, 20, 5, 5, 4, 90, 5),
                        "2048": block(100, 9, 5, 4, 3, 101, 11),
                        "8192": block(400, 19, 6, 5, 4, 400, 40)},
              "throughput": {"algorithms": {}}}
    got = {t["name"]: (t["target"], t["met"]) for t in speed_targets(result)}
    assert got["TTFT full_recompute / legolink-16 at 2048"] == (">= 10.0", True)
    assert got["TTFT full_recompute / legolink-16 at 8192"] == (">= 20.0", True)
    assert "TTFT full_recompute / legolink-16 at 1024" not in got
    assert got["TTFT legolink-2 / naive at 2048"] == ("<= 1.2", False)
    assert got["TTFT naive / floor at 2048"] == ("<= 1.3", False)
    assert got["TTFT naive / floor at 8192"] == ("<= 1.3", True)
    assert got["TTFT prefix_cache / full_recompute at 2048"] == ("<= 1.0", False)
    assert got["TTFT prefix_cache / full_recompute at 8192"] == ("<= 1.0", True)
    assert got[f"TTFT {SAME_PREFIX} / full_recompute at 2048"] == ("<= 0.1", False)
    assert got[f"TTFT {SAME_PREFIX} / full_recompute at 8192"] == ("<= 0.1", True)
    assert got["TTFT full_recompute / HF prefill (worst length)"] == ("<= 1.05", True)


def test_cli_writes_the_result_files(tiny_model_dir, tmp_path, capsys):
    common = ["--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"]
    out = tmp_path / "acc"
    assert main(["accuracy", "--data", str(SAMPLE), "--limit", "2", "--max-chunks", "1",
                 "--algorithms", "naive,legolink-4", "--max-new-tokens", "4", "--out", str(out),
                 *common]) == 0
    result = json.loads((out / "accuracy.json").read_text())
    assert result["limit"] == 2 and result["n"] == 2 and result["max_chunks"] == 1
    assert list(result["algorithms"]) == ["full_recompute", "naive", "legolink-4"]
    assert (out / "accuracy.csv").is_file() and (out / "accuracy.html").is_file()
    assert "legolink-4" in capsys.readouterr().out
    assert main(["accuracy", "--data", str(SAMPLE), "--algorithms", "magic",
                 "--out", str(out), *common]) == 2
    assert "unknown algorithm" in capsys.readouterr().err
