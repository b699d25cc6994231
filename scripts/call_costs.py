"""Estimated against measured time of the public app's heaviest calls (issue 19), on the
bundled model: each call's estimate (app/cost.py, app/budget.py) is printed before it runs
and its wall time after, through the same handlers the app serves.

    EPIC_CACHE_DIR=... .venv/bin/python scripts/call_costs.py [--quick] [--out FILE.json]

The calls run with the bound per call raised (EPIC_MAX_CALL_S, as an operator would): at the
default of 60 s the heavy ones are refused before they are queued, which this script shows
too. Each kind of call is estimated first from the start-up calibration alone; the estimator
then learns from what the calls took, as the app does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import benchmark, compose, inspector, library, planning, story
from app.budget import OverBudget
from app.examples import BENCH_DATASETS
from app.lab import Lab
from app.limits import AppLimits
from app.planning import estimate_compare
from bench.text import text_of_tokens
from engine import Engine, EngineConfig, algorithm_choices

SESSION = "call-costs"


def drain(result):
    """A handler's last value (streaming handlers yield several)."""
    if hasattr(result, "__next__"):
        *_, result = result
    return result


def measure(lab: Lab, name: str, estimate_fn, handler, *args) -> dict:
    estimate = estimate_fn(lab, SESSION, *args)
    print(f"{name}: estimate {estimate.seconds:.1f} s ({estimate.what}) ...", flush=True)
    start = time.perf_counter()
    drain(handler(lab, SESSION, *args))
    took = time.perf_counter() - start
    ratio = max(took, estimate.seconds) / max(min(took, estimate.seconds), 1e-9)
    load = os.getloadavg()[0]
    print(f"    measured {took:.1f} s: off by {ratio:.2f}x (load average {load:.1f})", flush=True)
    return {"call": name, "estimate_s": round(estimate.seconds, 2), "measured_s": round(took, 2),
            "ratio": round(ratio, 3), "what": estimate.what, "load": round(load, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="ordinary calls only")
    parser.add_argument("--only", default="", help="comma-separated: compile, ordinary, heavy, "
                        "speed, accuracy, frontier (default: all; compile always runs)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))

    def wanted(name: str) -> bool:
        return (not only or name in only) and (name == "ordinary" or not args.quick)

    engine = Engine(EngineConfig())
    start = time.perf_counter()
    lab = Lab.open(engine, replace(AppLimits.from_env(), max_call_s=100_000.0))
    print(f"lab open (with calibration) {time.perf_counter() - start:.1f} s; "
          f"{lab.estimator.describe()}", flush=True)
    rows = []
    rng = random.Random(7)
    docs = [text_of_tokens(engine.tokenizer, 500, rng) for _ in range(7)]
    for i, doc in enumerate(docs):
        rows.append(measure(lab, f"compile_text #{i + 1} (~500 tokens)",
                            planning.estimate_compile_text, library.compile_text, doc,
                            f"doc {i + 1}"))
    keys = list(lab.libraries.get(SESSION).chunks)  # ~3.5K tokens behind the example prefix
    _, prefix, example_keys, question, algorithms = compose.example_request(lab, SESSION)
    view = (0, True, 0, True, "minmax", 4)
    if wanted("ordinary"):
        rows.append(measure(lab, "run_compare, the example request (defaults)",
                            estimate_compare, compose.run_compare, prefix, example_keys,
                            question, algorithms, 16, 0.15, 32))
        rows.append(measure(lab, "inspect, the example request (naive, legolink)",
                            inspector.estimate_inspect, inspector.inspect_attention, prefix,
                            example_keys, question, ["naive", "legolink"], 16, 0.15, *view))
        rows.append(measure(lab, "story", story.estimate_story, story.run_story, question))
    limits, dataset = lab.limits, next(iter(BENCH_DATASETS))
    if wanted("heavy"):
        heavy = (prefix, keys, question, list(algorithm_choices()), 1024, 1.0)
        rows.append(measure(lab, "run_compare, every algorithm, k 1024, ratio 1, 64 new tokens",
                            estimate_compare, compose.run_compare, *heavy, 64))
        rows.append(measure(lab, "inspect, every algorithm, k 1024, ratio 1",
                            inspector.estimate_inspect, inspector.inspect_attention, *heavy,
                            *view))
    if wanted("speed"):
        lengths = benchmark.speed_lengths(lab)
        rows.append(measure(lab, f"bench_speed {lengths}, {limits.bench_repeats} repeats, every "
                            "algorithm, k 1024, ratio 1", benchmark.estimate_speed,
                            benchmark.bench_speed, lengths, limits.bench_repeats,
                            list(algorithm_choices()), 1024, 1.0))
    if wanted("accuracy"):
        rows.append(measure(lab, f"bench_accuracy {limits.bench_examples} examples x "
                            f"{limits.bench_chunks} chunks, every algorithm, k 1024, ratio 1",
                            benchmark.estimate_accuracy, benchmark.bench_accuracy, dataset,
                            limits.bench_examples, list(algorithm_choices()), 1024, 1.0,
                            limits.bench_chunks))
    if wanted("frontier"):
        rows.append(measure(lab, f"bench_frontier {limits.bench_examples} examples x "
                            f"{limits.bench_chunks} chunks", benchmark.estimate_frontier,
                            benchmark.bench_frontier, dataset, limits.bench_examples,
                            limits.bench_chunks))
    start = time.perf_counter()
    try:
        estimate_compare(lab, SESSION, "p", keys, "x" * 10_000_000, ["naive"], 16, 0.15, 8)
    except OverBudget as err:
        print(f"a question of 10 million characters: refused in "
              f"{(time.perf_counter() - start) * 1e3:.1f} ms ({err})")
    default = AppLimits().max_call_s
    print(f"\nAt the default bound ({default:.0f} s) these would be refused before queueing: "
          + (", ".join(r["call"] for r in rows if r["estimate_s"] > default) or "none"))
    print("\n| call | estimate | measured | off by | load |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['call']} | {r['estimate_s']:.1f} s | {r['measured_s']:.1f} s | "
              f"{r['ratio']:.2f}x | {r['load']:.1f} |")
    if args.out:
        args.out.write_text(json.dumps({"prices": lab.estimator.describe(), "calls": rows},
                                       indent=2))


if __name__ == "__main__":
    main()
