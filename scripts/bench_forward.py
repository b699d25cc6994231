"""Time our full forward against Hugging Face's own forward on the same tokens, and model loads.

    .venv/bin/python scripts/bench_forward.py --lengths 512,1024,2048,4096,8192 --repeats 5

Both forwards run in the same process after a warm-up; medians. Ours and HF's prefill
(`model(input_ids, logits_to_keep=1)`, as the speed benchmark times it) compute the logits of
the last position only; HF's body (`model.model(input_ids)`) has no LM head at all.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time

import torch

from engine import EngineConfig, load_model
from engine.runtime import Batch


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


@torch.inference_mode()
def _ours(model, ids: torch.Tensor) -> torch.Tensor:
    n = len(ids)
    kv = model.new_kv(n)
    h = model.forward(model.embed(ids), Batch.run(0, n, model.device), kv).h
    return model.logits(h[-1:])


@torch.inference_mode()
def _hf(model, ids: torch.Tensor) -> torch.Tensor:
    return model.hf_model(ids[None], logits_to_keep=1).logits


@torch.inference_mode()
def _hf_body(model, ids: torch.Tensor) -> torch.Tensor:
    return model.hf_model.model(ids[None]).last_hidden_state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="512,1024,2048")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cache = tempfile.mkdtemp()
    t0 = time.perf_counter()
    load_model(EngineConfig(cache_dir=cache))
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = load_model(EngineConfig(cache_dir=cache))
    warm = time.perf_counter() - t0
    shutil.rmtree(cache)
    print(f"load: first start (GGUF dequantize + convert) {cold:.1f} s, "
          f"second start (converted safetensors) {warm:.1f} s")
    print("| tokens | ours ms | HF prefill ms | HF body ms | ours / HF prefill | ours / HF body |")
    print("|---|---|---|---|---|---|")
    text = "The history of the region is long and full of small, local events. " * 1200
    all_ids = model.tokenizer(text).input_ids
    for n in map(int, args.lengths.split(",")):
        ids = torch.tensor(all_ids[:n], device=model.device)
        o, h, b = (_median_ms(lambda f=f, ids=ids: f(model, ids), args.repeats)
                   for f in (_ours, _hf, _hf_body))
        print(f"| {n} | {o:.0f} | {h:.0f} | {b:.0f} | {o / h:.2f} | {o / b:.2f} |")


if __name__ == "__main__":
    main()
