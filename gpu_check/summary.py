"""The check's results as compact Markdown tables (printed last: only the end of a run's output
comes back from the GPU machine), read from the steps' JSON. Standard library only.

    python -m gpu_check summary DIR      # the tables again, from a results folder
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SPEED_STEPS = ("speed-smollm2", "speed-llama8b-random")


def load_steps(out: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The steps' JSON files found in `out`, by step name."""
    return {name: json.loads((out / f"{name}.json").read_text())
            for name in names if (out / f"{name}.json").is_file()}


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:,.{digits}f}"


def _short(model: str) -> str:
    """"HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, ...)" -> "SmolLM2-135M-Instruct"."""
    return model.split(" (")[0].rsplit("/", 1)[-1]


def _ok(passed: bool) -> str:
    return "pass" if passed else "**FAIL**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(r) + " |" for r in rows)]


def _env(step: dict[str, Any]) -> list[str]:
    e, p = step["result"], step["result"].get("packages", {})
    gpu = (f"{e['gpu']} ({e['gpu_memory_gib']} GiB, sm {e['capability']})" if e.get("gpu")
           else f"no GPU (device {e.get('device')})")
    absent = [n for n in ("plotly", "pypdf", "rouge_score", "gradio") if not p.get(n)]
    missing = (f"MISSING: {', '.join(e['missing'])} · " if e.get("missing") else "") + (
        "CUDA NOT AVAILABLE · " if not e.get("cuda_available") and e.get("device") != "cpu"
        else "")
    return [f"{missing}python {e.get('python')} · torch {p.get('torch')} "
            f"(CUDA {e.get('torch_cuda')}) · transformers {p.get('transformers')} · "
            f"tokenizers {p.get('tokenizers')} · "
            f"gguf {p.get('gguf')}, redis {p.get('redis')} · {gpu} · not installed: "
            f"{', '.join(absent) or 'none'}"]


def _forward(rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for r in rows:
        e = r.get("error_vs_fp32")
        err = (f"{_num(e['ours_mean'])} / {_num(e['hf_mean'])}; {_num(e['ours_max'])} / "
               f"{_num(e['hf_max'])}" if e else "–")
        greedy = ("same" if r["greedy_equal"] else
                  f"differ at {r['first_difference']} (gap {_num(r['gap_at_difference'])}"
                  f"{': a tie' if r['tie'] else ''})")
        out.append([_short(r["model"]), r["dtype"], str(r["num_tokens"]),
                    _num(r["max_abs_logit_diff"]), err, f"{r['greedy_steps']}: {greedy}",
                    _ok(r["passed"])])
    return _table(["model", "dtype", "tokens", "max abs logit diff vs HF",
                   "error vs HF fp32, ours / HF: mean; max", "greedy tokens", ""], out)


def _invariants(rows: list[dict[str, Any]]) -> list[str]:
    return _table(["model", "dtype", "invariant", "max abs logprob diff", "bound", "tokens",
                   ""], [[_short(r["model"]), r["dtype"], r["invariant"],
                          _num(r["max_abs_logprob_diff"]), _num(r["bound"]),
                          "same" if r["tokens_equal"] else "DIFFER", _ok(r["passed"])]
                         for r in rows])


def _fidelity(f: dict[str, Any]) -> list[str]:
    dtypes = list(f["dtypes"])
    counts = ", ".join(f"{f['dtypes'][d]['n']} in {d}" for d in dtypes)
    head = [f"examples: {counts}; at most {f['max_chunks']} chunks, {f['new_tokens']} greedy "
            "tokens; KL(full || algorithm) of the first answer token in each dtype; chunk-start "
            f"mass: attention on the first {f['sink_tokens']} tokens of each chunk not at "
            "position 0"]

    def cells(label: str, key: str, digits: int = 3) -> str:
        return " / ".join(_num(f["dtypes"][d]["algorithms"][label][key], digits) for d in dtypes)

    rows = [[label, cells(label, "first_token_kl"), cells(label, "first_token_agreement", 2),
             cells(label, "agreement", 2), cells(label, "false_sink_mass"),
             cells(label, "ttft_ms_median", 1)] for label in f["algorithms"]]
    d = " / ".join(dtypes)
    out = head + _table(["algorithm", f"KL {d}", f"first token = full {d}",
                         f"answer = full {d}", f"chunk-start mass {d}",
                         f"TTFT ms {d}"], rows)
    if f.get("full_recompute_bf16_vs_fp32_kl") is not None:
        out.append(f"bf16's own floor: KL(full fp32 || full bf16) = "
                   f"{_num(f['full_recompute_bf16_vs_fp32_kl'])}")
    failed = [c["check"] for c in f.get("checks", []) if not c["passed"]]
    out.append("checks: " + ("all passed" if not failed else "FAILED: " + "; ".join(failed)))
    return out


def _speed(result: dict[str, Any]) -> list[str]:
    labels = list(next(iter(result["sweep"].values()))["algorithms"])
    rows = []
    for block in result["sweep"].values():
        a = block["algorithms"]
        ms = [_num(a[label]["ttft_ms_median"], 1) for label in labels]

        def ratio(x: float | None, y: float | None) -> str:
            return f"{x / y:.2f}x" if x and y else "–"

        full, lego = a["full_recompute"]["ttft_ms_median"], a["legolink-16"]["ttft_ms_median"]
        same = block.get("same_prefix", {}).get("ttft_ms_median")
        rows.append([_num(int(block["context_tokens"])), *ms, ratio(full, lego),
                     ratio(a["cacheblend-15"]["ttft_ms_median"], lego),
                     ratio(a["prefix_cache"]["ttft_ms_median"], full), ratio(same, full),
                     ratio(full, block["hf_prefill_ms_median"])])
    out = [f"{_short(result['model'])} · {result['device']} · {result['dtype']} · TTFT "
           f"medians in ms ({result['repeats']} repeats)"]
    out += _table(["tokens", *labels, "full / lego-16", "cb-15 / lego-16", "prefix / full",
                   "same prefix / full", "full / HF prefill"], rows)
    t = result["throughput"]["algorithms"]
    out.append(f"throughput ({result['throughput']['requests']} requests, req/s, x full): " +
               ", ".join(f"{label} {v['requests_per_s']:.1f} ({v['ratio_to_full_recompute']:.1f}x)"
                         for label, v in t.items()))
    kv, comp = result["kv"], result["compile"]
    out.append(f"KV {kv['bytes_per_token']:,} bytes/token (formula holds: "
               f"{_num(kv['bytes_match_formula'])}); compile {comp['compile_tokens_per_s']:,.0f} "
               f"tokens/s, {comp['compile_over_hf']:.2f}x HF prefill; "
               f"wall {result['wall_s']:.0f} s")
    return out


def render(steps: dict[str, dict[str, Any]], problems: dict[str, str], weights_problem: str,
           dry: bool) -> str:
    """Every table the steps' results allow, then the verdict per step."""
    lines = ["", "# GPU check" + (" (dry run: CPU, small shapes)" if dry else "")]
    if weights_problem:
        lines.append(f"SmolLM2 weights NOT AVAILABLE: {weights_problem}")
    if "env" in steps:
        lines += _env(steps["env"])
    c = steps.get("correctness", {}).get("result", {})
    if c.get("forward"):
        lines += ["", "## Our forward vs Hugging Face's", *_forward(c["forward"])]
    if c.get("invariants"):
        lines += ["", "## Link invariants", *_invariants(c["invariants"])]
    for err in c.get("errors", []):
        lines.append(f"ERROR {err['model']}: {err['error']}")
    if steps.get("fidelity", {}).get("result", {}).get("dtypes"):
        lines += ["", "## Fidelity to full recompute, bf16 beside fp32 (SmolLM2, hotpotqa)"]
        lines += _fidelity(steps["fidelity"]["result"])
    for name in SPEED_STEPS:
        if steps.get(name, {}).get("result", {}).get("sweep"):
            lines += ["", f"## Speed: {name}", *_speed(steps[name]["result"])]
    lines += ["", "## Steps"]
    for name, step in steps.items():
        error = step["result"].get("error")
        extra = (f"; imported {', '.join(step['forbidden_modules'])}"
                 if step["forbidden_modules"] else "") + (f"; {error}" if error else "")
        lines.append(f"- {name}: {_ok(step['passed'])} in {step['wall_s']:.0f} s{extra}")
    lines += [f"- {name}: **{problem}**" for name, problem in problems.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from gpu_check.run import STEPS
    if len(argv) != 1:
        sys.exit("usage: python -m gpu_check summary DIR")
    out = Path(argv[0])
    print(render(load_steps(out, [name for name, _, _ in STEPS]), {}, "", False))
    return 0
