"""The frontier benchmark on a tiny random Llama: blocks per context length, the target check
worked by hand, needle haystacks, and the command line's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import examples_from_jsonl
from bench.frontier import FRONTIER_ALGORITHMS, corner, corner_text, run_frontier, target
from engine import Engine

SAMPLE = Path(__file__).parent.parent / "data" / "bench_sample.jsonl"
SOME = "naive,legolink-2,legolink-16,cacheblend-15,querylink-2,querylink-16"


@pytest.fixture(scope="module")
def engine(tiny_engine_config) -> Engine:
    return Engine(tiny_engine_config)


def _row(kl: float, ttft: float, share: float) -> dict[str, float]:
    return {"first_token_kl": kl, "ttft_ms_median": ttft, "recompute_share": share,
            "agreement": 0.5, "score": 0.25}


def test_target_by_hand():
    rows = {"legolink-16": _row(0.11, 400.0, 0.10), "cacheblend-15": _row(0.09, 580.0, 0.15),
            "querylink-8": _row(0.10, 380.0, 0.05), "querylink-16": _row(0.05, 480.0, 0.104)}
    goal = target(rows)
    assert goal["algorithm"] == "querylink-16", "the setting within 5% of legolink-16's count"
    assert goal["recompute_ratio"] == pytest.approx(1.04)
    assert goal["kl_met"] and goal["kl_reference_value"] == 0.09
    assert goal["ttft_ratio"] == pytest.approx(1.2) and goal["ttft_met"]
    rows["querylink-16"] = _row(0.095, 520.0, 0.096)
    goal = target(rows)
    assert not goal["kl_met"] and not goal["ttft_met"] and goal["ttft_ratio"] == 1.3
    rows["querylink-16"] = _row(0.05, 400.0, 0.106)  # 6% more than legolink-16: not matched
    assert target(rows) is None
    assert target({"legolink-16": _row(0.1, 1.0, 0.1)}) is None


def test_corner_by_hand():
    rows = {"full_recompute": _row(0.0, 900.0, 1.0), "naive": _row(0.3, 200.0, 0.0),
            "legolink-16": _row(0.1, 300.0, 0.1), "legolink0": _row(0.09, 230.0, 0.0),
            "ape": _row(0.2, 210.0, 0.0), "prophetkv-16": _row(0.05, 375.0, 0.1),
            "infoflow-16": _row(0.04, 380.0, 0.1)}
    found = corner(rows)
    assert found["fast"] == ["legolink0"], "<= 1.2x naive's TTFT with KL <= legolink-16's"
    assert found["half"] == ["prophetkv-16"], "TTFT within 1.25x legolink-16's, half its KL"
    assert "legolink0" in corner_text(found) and corner({"naive": rows["naive"]}) is None


def test_frontier_with_compile_variants_leaves_the_store_empty(engine):
    result = run_frontier(engine, examples_from_jsonl(SAMPLE), (2,),
                          "naive,legolink-16,legolink0,ape,infoflow-16", limit=2,
                          max_new_tokens=2)
    block = result["lengths"]["2"]
    assert set(block["corner"]) == {"fast", "half", "naive_ttft_ms", "budget_kl",
                                    "budget_ttft_ms"}
    assert block["algorithms"]["legolink0"]["recompute_share"] == 0.0
    assert len(engine.store) == 0, "every compile variant the frontier made is evicted again"


def test_frontier_blocks_per_context_length(engine):
    examples = examples_from_jsonl(SAMPLE)
    seen = []
    result = run_frontier(engine, examples, (1, 2), SOME, limit=2, max_new_tokens=2,
                          progress=lambda f, text: seen.append(f))
    assert result["benchmark"] == "frontier" and result["dataset"] == "hotpotqa"
    labels = ["full_recompute", *SOME.split(",")]
    assert result["algorithms"] == labels
    assert list(result["lengths"]) == ["1", "2"]
    one, two = result["lengths"].values()
    assert one["n"] == two["n"] == 2 and two["context_tokens_mean"] > one["context_tokens_mean"]
    for block in (one, two):
        rows = block["algorithms"]
        assert list(rows) == labels
        assert rows["full_recompute"]["first_token_kl"] == 0.0
        goal = block["target"]
        assert goal["algorithm"] == "querylink-16" and goal["recompute_ratio"] == 1.0
        assert goal["ttft_ratio"] == (rows["querylink-16"]["ttft_ms_median"]
                                      / rows["legolink-16"]["ttft_ms_median"])
        assert goal["kl_met"] == (rows["querylink-16"]["first_token_kl"]
                                  <= rows["cacheblend-15"]["first_token_kl"])
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len(engine.store) == 0, "the frontier leaves the store as it found it"


def test_frontier_on_needle_haystacks(engine):
    result = run_frontier(engine, examples_from_jsonl(SAMPLE), (3,), "naive,querylink-4",
                          needle=True, limit=2, chunk_words=20, max_new_tokens=2)
    block = result["lengths"]["3"]
    assert result["dataset"] == "needle" and block["n"] == 2 and block["target"] is None
    assert all(r["num_chunks"] == 3 for r in block["examples"])


def test_frontier_refuses_bad_input(engine):
    with pytest.raises(ValueError, match="no examples"):
        run_frontier(engine, [], (2,), SOME)
    with pytest.raises(ValueError, match="chunk counts must be >= 1"):
        run_frontier(engine, examples_from_jsonl(SAMPLE), (0,), SOME)


def test_default_settings_cover_the_frontier():
    assert FRONTIER_ALGORITHMS[0] == "full_recompute"
    for label in ("naive", "legolink-16", "cacheblend-15", "querylink-16"):
        assert label in FRONTIER_ALGORITHMS


def test_cli_writes_frontier_json_and_html(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "frontier"
    assert main(["frontier", "--data", str(SAMPLE), "--limit", "1", "--max-chunks", "2",
                 "--algorithms", SOME, "--max-new-tokens", "2", "--out", str(out),
                 "--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"]) == 0
    result = json.loads((out / "frontier.json").read_text())
    assert result["limit"] == 1 and list(result["lengths"]) == ["2"]
    html = (out / "frontier.html").read_text()
    assert html.lower().startswith("<!doctype html>") and "querylink-16" in html
    printed = capsys.readouterr().out
    assert "target: querylink-16" in printed and "wrote" in printed
    assert main(["frontier", "--data", str(SAMPLE), "--limit", "0", "--out", str(out)]) == 2
    assert "--limit must be >= 1" in capsys.readouterr().err


def test_an_example_over_the_context_limit_is_passed_over_not_fatal(engine):
    examples = examples_from_jsonl(SAMPLE)
    words = " ".join(f"w{i}" for i in range(engine.context_limit))  # one token or more each
    long = {**examples[0], "id": "too-long", "chunks": [words, *examples[0]["chunks"]]}
    result = run_frontier(engine, [long, *examples], (2,), "naive", limit=2, max_new_tokens=2)
    block = result["lengths"]["2"]
    assert block["skipped"] == ["too-long"], "the long example is named, not run"
    assert block["n"] == 2 and [r["id"] for r in block["examples"]] == [
        e["id"] for e in examples[:2]], "the limit counts the examples that fit"
    assert len(engine.store) == 0, "nothing of the long example was compiled"
    with pytest.raises(ValueError, match="none of the 1 examples fits the context limit"):
        run_frontier(engine, [long], (2,), "naive", limit=2, max_new_tokens=2)


def test_cli_limit_counts_the_examples_that_fit(engine, tiny_model_dir, tmp_path, capsys):
    examples = examples_from_jsonl(SAMPLE)
    words = " ".join(f"w{i}" for i in range(engine.context_limit))
    long = {**examples[0], "id": "too-long", "chunks": [words, *examples[0]["chunks"]]}
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in [long, *examples]))
    out = tmp_path / "frontier"
    assert main(["frontier", "--data", str(data), "--limit", "2", "--max-chunks", "2",
                 "--algorithms", "naive", "--max-new-tokens", "2", "--out", str(out),
                 "--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"]) == 0
    block = json.loads((out / "frontier.json").read_text())["lengths"]["2"]
    assert block["skipped"] == ["too-long"] and block["n"] == 2, \
        "--limit 2 runs two examples that fit, not the first two lines of the file"
