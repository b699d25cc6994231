"""One step of the check, in a process of its own (the runner gives each a time budget):

    python -m gpu_check.steps NAME --out DIR --device cuda --weights GGUF --tokenizer DIR \
        --data JSONL --cache DIR [--dry]

NAME is one of STEPS. Each writes DIR/NAME.json: {"step", "passed", "wall_s", "result",
"forbidden_modules"}; a step that imported one of the modules the check must not need fails.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

FORBIDDEN = ("plotly", "pypdf", "rouge_score", "gradio", "gradio_client")
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "accelerate", "gguf",
            "redis", "plotly", "pypdf", "rouge_score", "gradio")


def env(setup) -> dict[str, Any]:
    import torch
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    facts = {"python": platform.python_version(), "executable": sys.executable,
             "packages": versions, "cuda_available": cuda,
             "torch_cuda": torch.version.cuda, "device": setup.device}
    if cuda:
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                     capability=f"{props.major}.{props.minor}",
                     multiprocessors=props.multi_processor_count)
    needed = [n for n in ("torch", "transformers", "tokenizers", "safetensors", "gguf", "redis")
              if versions[n] is None]
    facts["missing"] = needed
    facts["passed"] = not needed and (cuda or setup.device == "cpu")
    return facts


def correctness(setup) -> dict[str, Any]:
    from bench.data import examples_from_jsonl
    from engine import EngineConfig
    from gpu_check.forward import check_forward, sample_ids
    from gpu_check.invariants import check_invariants
    from gpu_check.models import TINY_FAMILIES, smollm2, tiny_engine, tiny_model

    tokenizer = setup.tokenizer()
    example = examples_from_jsonl(setup.data)[0]
    ids = sample_ids(tokenizer, "\n\n".join(example["chunks"]), 64 if setup.dry else 512)
    steps = 8 if setup.dry else 20
    out: dict[str, Any] = {"forward": [], "invariants": [], "errors": []}

    def guarded(name: str, work) -> None:
        try:
            work()
        except Exception as e:  # one model's failure must not hide the others' results
            out["errors"].append({"model": name, "error": f"{type(e).__name__}: {e}",
                                  "traceback": traceback.format_exc(limit=6)})

    def invariants(make) -> None:
        rows, full = check_invariants(make("float32"), example["chunks"][:3], example["question"])
        out["invariants"] += rows
        out["invariants"] += check_invariants(make("bfloat16"), example["chunks"][:3],
                                              example["question"], full)[0]

    for family in TINY_FAMILIES:
        guarded(f"tiny {family}", lambda f=family: out["forward"].extend(check_forward(
            {d: tiny_model(f, tokenizer, setup.device, EngineConfig(dtype=d).torch_dtype)
             for d in ("float32", "bfloat16")}, ids, steps)))
    guarded("tiny llama", lambda: invariants(
        lambda dtype: tiny_engine("llama", setup, dtype, tokenizer)))
    engines = {}

    def smol(dtype: str):
        if dtype not in engines:
            engines[dtype] = smollm2(setup, dtype, tokenizer)
        return engines[dtype]

    guarded("SmolLM2", lambda: out["forward"].extend(check_forward(
        {d: smol(d).model for d in ("float32", "bfloat16")}, ids, steps)))
    guarded("SmolLM2", lambda: invariants(smol))
    rows = out["forward"] + out["invariants"]
    out["passed"] = bool(rows) and not out["errors"] and all(r["passed"] for r in rows)
    return out


def fidelity(setup) -> dict[str, Any]:
    from bench.data import examples_from_jsonl
    from gpu_check.fidelity import run_fidelity
    from gpu_check.models import smollm2

    tokenizer = setup.tokenizer()
    examples = examples_from_jsonl(setup.data)
    return run_fidelity({d: (lambda d=d: smollm2(setup, d, tokenizer))
                         for d in ("float32", "bfloat16")},
                        examples, limit=2 if setup.dry else 10, max_chunks=2 if setup.dry else 6)


def speed_smollm2(setup) -> dict[str, Any]:
    from gpu_check.models import smollm2
    from gpu_check.speed import run_sweep
    return run_sweep(smollm2(setup, setup.speed_dtype), setup.dry)


def speed_llama8b(setup) -> dict[str, Any]:
    from gpu_check.models import random_llama_8b
    from gpu_check.speed import run_sweep
    return run_sweep(random_llama_8b(setup, setup.tokenizer()), setup.dry)


STEPS = {"env": env, "correctness": correctness, "fidelity": fidelity,
         "speed-smollm2": speed_smollm2, "speed-llama8b-random": speed_llama8b}


def finite(value: Any) -> Any:
    """NaN and infinities -> None, recursively: the files are strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    from gpu_check.models import Setup
    parser = argparse.ArgumentParser(prog="python -m gpu_check.steps")
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--dry", action="store_true")
    args = parser.parse_args(argv)
    setup = Setup(args.device, args.weights, args.tokenizer, args.data, args.cache, args.dry)
    start = time.perf_counter()
    try:
        result = STEPS[args.step](setup)
        passed = bool(result.get("passed"))
    except Exception as e:
        traceback.print_exc()
        result, passed = {"error": f"{type(e).__name__}: {e}"}, False
    forbidden = sorted({m.split(".")[0] for m in sys.modules} & set(FORBIDDEN))
    record = {"step": args.step, "passed": passed and not forbidden,
              "wall_s": time.perf_counter() - start, "forbidden_modules": forbidden,
              "result": result}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.step}.json").write_text(
        json.dumps(finite(record), indent=1, allow_nan=False, default=str) + "\n")
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
