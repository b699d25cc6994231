"""Our forward against Hugging Face's, on the check's device, in fp32 and bf16.

Per model and dtype: the largest |logit difference| between our full prefill and the plain
Hugging Face forward over the same tokens (every position), and whether greedy decoding gives
the same tokens as Hugging Face's `generate`.

Bounds. fp32: max |difference| <= 1e-4 (DESIGN §3). bf16 is no copy of Hugging Face's bf16:
our RoPE rotates in fp32 before rounding (DESIGN §5, precision) where Hugging Face's rounds
cos and sin to bf16 first, so both are measured against Hugging Face's fp32 forward on the same
weights, and ours passes when it is about as close to it as theirs: mean |error| at most 1.25x
theirs and max |error| at most 1.5x. Greedy tokens must be equal; where they part, the step
counts as a tie (and passes) only if our own top two logits there lie within twice the
dtype's rounding scale (fp32: 1e-4; bf16: Hugging Face's bf16 max |error|) of each other.
"""

from __future__ import annotations

from typing import Any

import torch

from engine import Batch, Model

FP32_BOUND = 1e-4
BF16_MEAN_RATIO, BF16_MAX_RATIO = 1.25, 1.5


@torch.inference_mode()
def our_logits(model: Model, ids: torch.Tensor) -> torch.Tensor:
    """Our full prefill: [n] ids -> [n, vocab] fp32 logits."""
    n = len(ids)
    kv = model.new_kv(n)
    h = model.forward(model.embed(ids), Batch.run(0, n, model.device), kv).h
    return model.logits(h)


@torch.inference_mode()
def hf_logits(model: Model, ids: torch.Tensor) -> torch.Tensor:
    return model.hf_model(ids[None].to(model.device)).logits[0].float()


@torch.inference_mode()
def our_greedy(model: Model, ids: torch.Tensor, steps: int) -> tuple[list[int], list[float]]:
    """Greedy tokens by our forward, and at each step the gap between its top two logits."""
    n, tokens, gaps = len(ids), [], []
    kv = model.new_kv(n + steps)
    h = model.forward(model.embed(ids), Batch.run(0, n, model.device), kv).h
    for step in range(steps):
        logits = model.logits(h[-1:])[0]
        top = torch.topk(logits, 2).values
        tokens.append(int(logits.argmax()))
        gaps.append(float(top[0] - top[1]))
        token = torch.tensor([tokens[-1]], device=model.device)
        h = model.forward(model.embed(token), Batch.run(n + step, 1, model.device), kv).h
    return tokens, gaps


@torch.inference_mode()
def hf_greedy(model: Model, ids: torch.Tensor, steps: int) -> list[int]:
    out = model.hf_model.generate(ids[None].to(model.device), max_new_tokens=steps,
                                  do_sample=False, eos_token_id=None, pad_token_id=0,
                                  min_new_tokens=steps)
    return out[0, len(ids):].tolist()


def compare(model: Model, ids: torch.Tensor, steps: int, reference_fp32: torch.Tensor | None,
            ) -> tuple[dict[str, Any], torch.Tensor]:
    """One model in one dtype against Hugging Face's forward -> (a result row, Hugging Face's
    logits). `reference_fp32`: Hugging Face's fp32 logits on the same weights (for bf16)."""
    ours, theirs = our_logits(model, ids), hf_logits(model, ids)
    diff = float((ours - theirs).abs().max())
    row: dict[str, Any] = {"model": model.model_id, "dtype": model.dtype_name,
                           "num_tokens": len(ids), "max_abs_logit_diff": diff}
    if model.dtype == torch.float32:
        scale = FP32_BOUND
        row["logits_ok"] = diff <= FP32_BOUND
        row["rule"] = f"max |ours - HF| <= {FP32_BOUND:g}"
    else:
        reference = reference_fp32.to(theirs.device)
        err_ours, err_hf = (ours - reference).abs(), (theirs - reference).abs()
        scale = float(err_hf.max())
        row.update({"error_vs_fp32": {"ours_max": float(err_ours.max()), "hf_max": scale,
                                      "ours_mean": float(err_ours.mean()),
                                      "hf_mean": float(err_hf.mean())}})
        e = row["error_vs_fp32"]
        row["mean_error_ratio"] = e["ours_mean"] / e["hf_mean"] if e["hf_mean"] else 1.0
        row["max_error_ratio"] = e["ours_max"] / e["hf_max"] if e["hf_max"] else 1.0
        row["logits_ok"] = (row["mean_error_ratio"] <= BF16_MEAN_RATIO
                            and row["max_error_ratio"] <= BF16_MAX_RATIO)
        row["rule"] = (f"|ours - HF fp32| <= {BF16_MEAN_RATIO}x (mean), {BF16_MAX_RATIO}x (max) "
                       "|HF bf16 - HF fp32|")
    prompt = ids[: min(len(ids), 48)]
    mine, gaps = our_greedy(model, prompt, steps)
    hf = hf_greedy(model, prompt, steps)
    first = next((i for i, (a, b) in enumerate(zip(mine, hf, strict=True)) if a != b), None)
    gap = gaps[first] if first is not None else None
    row.update({"greedy_steps": steps, "greedy_equal": first is None,
                "first_difference": first, "gap_at_difference": gap,
                "tie": gap is not None and gap <= 2 * scale})
    row["passed"] = row["logits_ok"] and (first is None or row["tie"])
    return row, theirs.cpu()


def sample_ids(tokenizer, text: str, num_tokens: int) -> torch.Tensor:
    ids = tokenizer(text, add_special_tokens=False).input_ids
    while len(ids) < num_tokens:
        ids = ids + ids
    return torch.tensor(ids[:num_tokens])


def check_forward(models_by_dtype: dict[str, Model], ids: torch.Tensor, steps: int,
                  ) -> list[dict[str, Any]]:
    """fp32 first (its Hugging Face logits bound the bf16 row), then bf16."""
    rows, reference = [], None
    for dtype in ("float32", "bfloat16"):
        model = models_by_dtype[dtype]
        row, theirs = compare(model, ids, steps, reference)
        reference = theirs if dtype == "float32" else reference
        rows.append(row)
    return rows
