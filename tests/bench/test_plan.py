"""A benchmark's plan lists exactly the model calls its run makes (the app estimates a run's
cost from the plan before it starts), on a tiny random Llama."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import bench.speed
from bench.accuracy import run_accuracy
from bench.data import examples_from_jsonl
from bench.plan import plan_accuracy, plan_speed
from engine import Engine

SAMPLE = Path(__file__).parent.parent / "data" / "bench_sample.jsonl"
ALGORITHMS = ["full_recompute", "naive", "cacheblend-15", "legolink-16", "prefix_cache"]


@pytest.fixture()
def engine(tiny_engine_config) -> Engine:
    return Engine(tiny_engine_config)


def counted(engine: Engine, monkeypatch) -> Counter:
    """Count the engine's runs (by algorithm and new tokens) and compiles (by chunk size), and
    the speed benchmark's plain prefills and floor passes, as the run makes them."""
    calls: Counter = Counter()
    run, compile_text = engine.run, engine.compile

    def counting_run(prefix, chunks, question, algorithm="legolink", **kwargs):
        result = run(prefix, chunks, question, algorithm, **kwargs)
        calls["run", result.algorithm, kwargs.get("max_new_tokens", 32)] += 1
        calls["prompt tokens", result.algorithm, result.num_prompt_tokens] += 1
        return result

    def counting_compile(text, title=""):
        key = compile_text(text, title)
        calls["compile", engine.store.peek(key).num_tokens] += 1
        return key

    for owner, name in ((bench.speed, "hf_prefill_ms"), (engine, "floor")):
        real = getattr(owner, name)

        def wrapped(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(owner, name, wrapped)
    monkeypatch.setattr(engine, "run", counting_run)
    monkeypatch.setattr(engine, "compile", counting_compile)
    return calls


def planned(plan) -> Counter:
    """The same counts from a plan (prefills and floor passes by kind)."""
    calls: Counter = Counter()
    for call in plan:
        if call.kind == "run":
            calls["run", call.label, call.new_tokens] += call.count
            calls["prompt tokens", call.label, call.num_tokens] += call.count
        elif call.kind == "compile":
            calls["compile", call.num_tokens] += call.count
        else:
            calls[{"prefill": "hf_prefill_ms", "floor": "floor"}[call.kind]] += call.count
    return calls


def test_the_accuracy_plan_is_the_runs_calls(engine, monkeypatch):
    examples = examples_from_jsonl(SAMPLE)[:2]
    plan = plan_accuracy(engine, examples, ALGORITHMS, max_chunks=2, max_new_tokens=3)
    calls = counted(engine, monkeypatch)
    run_accuracy(engine, examples, ALGORITHMS, max_chunks=2, max_new_tokens=3)
    assert planned(plan) == calls, "the plan must list each run and compile of the benchmark, "\
        "with its prompt's tokens"


def test_the_speed_plan_is_the_runs_calls(engine, monkeypatch):
    options = dict(lengths=(300, 500), repeats=2, algorithms=ALGORITHMS, chunk_tokens=128,
                   requests=2, pool_size=3, request_chunks=2, throughput_new_tokens=2)
    plan = plan_speed(engine, **options)
    calls = counted(engine, monkeypatch)
    bench.speed.run_speed(engine, **options, memory=True)
    got, want = Counter(), Counter()
    for counts, into in ((calls, got), (planned(plan), want)):
        for key, n in counts.items():  # synthetic text: compiles and prompts by count only
            into[key[:2] if key[0] == "prompt tokens" else
                 key[0] if key[0] == "compile" else key] += n
    assert want == got, "the plan must list each call of the speed benchmark"
    sizes = [c.num_tokens for c in plan if c.kind == "run" and c.new_tokens == 1]
    assert max(sizes) <= 500 and min(sizes) >= 300 * 0.8, sizes
