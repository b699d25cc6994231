"""On the GPU machine: keep each early transfer's weights part (`store`), and in the last call
join the weights, install the bundle's wheels and run the check's steps (`run`).

    python -m gpu_check store [--bundle .gpu_bundle] [--stash DIR]
    python -m gpu_check run --out DIR [--dry] [--steps a,b] [--bundle .gpu_bundle] [--stash DIR]

Standard library only until the steps start (each a process of its own, with a time budget),
so the weights and the wheels are checked and a missing part is named even where torch is
broken. `run` exits 0 only when every step ran and passed; it always ends by printing the
summary tables (gpu_check/summary.py) and writes DIR/summary.md beside each step's JSON and
DIR/steps.log. --dry rehearses on a CPU: small shapes, budgets 30 times as long.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from gpu_check.parts import BUNDLE_DIR, Bundle, BundleError
from gpu_check.summary import load_steps, render

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STASH = Path(os.environ.get("GPU_CHECK_STASH", "/tmp/epic-gpu-stash"))
# name, seconds on the GPU (the dry run gets DRY_SCALE times as long), needs SmolLM2's weights.
# They add up to 400 s: with start-up, joining and installing, the check stays under 8 minutes.
STEPS = (("env", 20, False), ("correctness", 80, False), ("fidelity", 90, True),
         ("speed-smollm2", 90, True), ("speed-llama8b-random", 120, False))
# A CPU rehearsal is bounded, not timed: on this shared 2-core machine the dry fidelity step
# took 65 s alone and over 900 s under a load average of 10.
DRY_SCALE = 30
DATA = "data/hotpotqa-10.jsonl"


def say(text: str) -> None:
    print(text, flush=True)


def store(bundle: Bundle) -> int:
    for line in bundle.store():
        say(line)
    last = bundle.num_transfers
    if last in bundle.present:
        say("this call holds the last transfer: run the check with `bash scripts/gpu_check.sh "
            "run \"$OUT\"` instead")
    else:
        say(f"now send transfer {last} at once (the machine stays warm only 30 s after a call)")
    return 0


def install_wheels(bundle: Bundle, target: Path) -> None:
    """The bundle's wheels into `target` (no index, no dependencies), checked first."""
    wheels = sorted(bundle.checked("wheels").glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", "--no-cache-dir", "--disable-pip-version-check",
                    "--upgrade", "--target", str(target), *map(str, wheels)], check=True)


def run_step(name: str, budget_s: int, args: list[str], env: dict[str, str], out: Path,
             log: Path) -> str:
    """Run one step in its own process -> "" when it ran, else why not (its log's tail is
    printed, since only the end of the output comes back)."""
    start = time.perf_counter()
    (out / f"{name}.json").unlink(missing_ok=True)  # a file from an earlier run is no result
    with log.open("a") as f:
        f.write(f"\n===== {name}\n")
        f.flush()
        try:
            done = subprocess.run([sys.executable, "-m", "gpu_check.steps", name, *args],
                                  stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                  timeout=budget_s)
            problem = "" if (out / f"{name}.json").is_file() else f"exit {done.returncode}"
        except subprocess.TimeoutExpired:
            problem = f"stopped at its budget of {budget_s} s"
    took = time.perf_counter() - start
    say(f"== {name}: {'ran' if not problem else problem} in {took:.0f} s (budget {budget_s} s)")
    if problem:
        tail = log.read_text(errors="replace").splitlines()[-12:]
        say("\n".join(f"   | {line[-160:]}" for line in tail))
    return problem


def _passed(out: Path, name: str) -> bool:
    steps = load_steps(out, [name])
    return name in steps and steps[name]["passed"]


def run(bundle: Bundle, out: Path, dry: bool, chosen: list[str] | None = None) -> int:
    """Join, install, run the steps (`chosen`: a subset, env always first) -> exit status."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / "steps.log"
    log.write_text("")
    for line in bundle.store():  # this call's own parts, so a rerun finds them there too
        say(line)
    try:
        weights, weights_problem = bundle.weights(), ""
        say(f"weights: {weights} ({bundle.manifest['weights']['num_bytes'] / 2**20:.1f} MiB, "
            "SHA-256 ok)")
    except BundleError as e:
        weights, weights_problem = None, str(e)
        say(f"weights: NOT AVAILABLE: {e}")
    site = bundle.stash / "site"
    try:
        install_wheels(bundle, site)
    except subprocess.CalledProcessError as e:
        say(f"wheels: pip could not install the bundle's wheels (exit {e.returncode})")
        return 1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("EPIC_STORE_URL", None)  # the check's engines are alone
    args = ["--out", str(out), "--device", "cpu" if dry else "cuda",
            "--tokenizer", str(bundle.checked("tokenizer")), "--data", str(bundle.checked(DATA)),
            "--cache", str(bundle.stash / "cache"), *(["--dry"] if dry else []),
            *(["--weights", str(weights)] if weights else [])]
    problems, ran = {}, []
    for name, budget, needs_weights in STEPS:
        if chosen and name != "env" and name not in chosen:
            continue
        ran.append(name)
        if needs_weights and weights is None:
            problems[name] = "skipped: SmolLM2's weights are not available"
            say(f"== {name}: {problems[name]}")
            continue
        if problems.get("env") or (name != "env" and not _passed(out, "env")):
            problems[name] = "skipped: the environment step failed (see env above)"
            say(f"== {name}: {problems[name]}")
            continue
        problem = run_step(name, budget * (DRY_SCALE if dry else 1), args, env, out, log)
        if problem:
            problems[name] = problem
    steps = load_steps(out, ran)
    summary = render(steps, problems, weights_problem, dry)
    (out / "summary.md").write_text(summary + "\n")
    say(summary)
    passed = not problems and not weights_problem and all(s["passed"] for s in steps.values())
    say(f"GPU check {'PASSED' if passed else 'FAILED'}; files in {out}")
    return 0 if passed else 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("store", "run"))
    parser.add_argument("--bundle", type=Path, default=ROOT / BUNDLE_DIR)
    parser.add_argument("--stash", type=Path, default=DEFAULT_STASH,
                        help="outside the repository copy ($GPU_CHECK_STASH, else %(default)s)")
    parser.add_argument("--out", type=Path, help="run: where the results go")
    parser.add_argument("--dry", action="store_true", help="run: rehearse on a CPU")
    parser.add_argument("--steps", default=os.environ.get("GPU_CHECK_STEPS", ""),
                        help="run: only these steps, comma-separated (env always runs; default "
                        "$GPU_CHECK_STEPS, else all): " + ", ".join(n for n, _, _ in STEPS))
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.steps.split(",") if n.strip()]
    unknown = sorted(set(chosen) - {n for n, _, _ in STEPS})
    if unknown:
        parser.error(f"unknown steps: {', '.join(unknown)}")
    try:
        bundle = Bundle(args.bundle, args.stash)
        if args.command == "store":
            return store(bundle)
        if args.out is None:
            parser.error("run needs --out DIR")
        return run(bundle, args.out.resolve(), args.dry, chosen)
    except BundleError as e:
        say(f"bundle: {e}")
        return 1
