"""The GPU check rehearsed on this CPU from the bundle alone (scripts/gpu_rehearse.sh): a bundle
built here, its two transfers laid into two empty folders as two `run` calls would bring them,
the weights stored by the first call and joined by the second, the check run in its dry mode.

This test runs it with the project's own interpreter, and every step but speed-smollm2 (whose
code, bench.speed's sweep, the tiny stand-in for the 8B shape runs too) to save CI minutes;
the same script with no PYTHON set makes and uses a clean virtualenv of the GPU image's
versions and runs every step (README.md, "GPU check")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpu_check.bundle import build, report
from gpu_check.parts import PART_LIMIT_BYTES, TRANSFER_LIMIT_BYTES
from gpu_check.run import STEPS

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "hotpotqa_5.jsonl"
CHOSEN = [name for name, _, _ in STEPS if name not in ("env", "speed-smollm2")]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("gpu") / "bundle"
    return folder, build(folder, DATA, num_examples=10)


@pytest.mark.slow
def test_bundle_fits_and_the_check_passes_from_it(bundle, tmp_path):
    folder, manifest = bundle
    lines, fits = report(manifest)
    assert fits, "\n".join(lines)
    assert all(t["num_bytes"] <= TRANSFER_LIMIT_BYTES for t in manifest["transfers"])
    assert all(p["num_bytes"] <= PART_LIMIT_BYTES for p in manifest["weights"]["parts"])
    wheels = sorted(p.name for p in (folder / "transfer-2" / "wheels").iterdir())
    assert [w.split("-")[0] for w in wheels] == ["gguf", "redis"], wheels

    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "GPU_BUNDLE": str(folder),
           "GPU_CHECK_STEPS": ",".join(CHOSEN)}
    env.pop("PYTHONPATH", None)  # the scripts set it to the copy they run in
    done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_rehearse.sh"), str(out)],
                          env=env, capture_output=True, text=True, timeout=2700)
    output = done.stdout + done.stderr
    assert "stored weights part 1 of 2" in output, output[-3000:]
    assert "SHA-256 ok" in output and "GPU check PASSED" in output, output[-6000:]
    assert done.returncode == 0, output[-6000:]
    assert not (out / "speed-smollm2.json").exists(), "a step not chosen does not run"
    for name in ("env", *CHOSEN):
        step = json.loads((out / f"{name}.json").read_text())
        assert step["passed"], f"{name} failed: {json.dumps(step)[:1500]}"
        assert step["forbidden_modules"] == [], f"{name} imported {step['forbidden_modules']}"
    summary = (out / "summary.md").read_text()
    for table in ("## Our forward vs Hugging Face's", "## Link invariants",
                  "## Fidelity to full recompute", "## Speed: speed-llama8b-random"):
        assert table in summary, f"the summary lacks {table}"
    correctness = json.loads((out / "correctness.json").read_text())["result"]
    models = {row["model"] for row in correctness["forward"]}
    assert len(models) == 4, f"SmolLM2 and three tiny families, got {models}"
    assert {row["dtype"] for row in correctness["forward"]} == {"float32", "bfloat16"}
    assert len(correctness["invariants"]) == 12, "3 invariants x 2 models x 2 dtypes"


@pytest.mark.slow
def test_the_last_call_alone_names_the_missing_part_and_fails(bundle, tmp_path):
    """The machine went cold between the calls: transfer 2 arrives, part 1 is nowhere."""
    folder, _ = bundle
    alone = tmp_path / "copy" / ".gpu_bundle"
    alone.mkdir(parents=True)
    shutil.copytree(folder / "transfer-2", alone / "transfer-2")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "gpu_check", "run", "--out", str(tmp_path / "out"),
                           "--dry", "--steps", "env", "--bundle", str(alone),
                           "--stash", str(tmp_path / "stash")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert "weights: NOT AVAILABLE: weights part 1 of 2 is missing" in output, output[-3000:]
    assert "send that transfer again" in output and "GPU check FAILED" in output
    assert "SmolLM2 weights NOT AVAILABLE" in (tmp_path / "out" / "summary.md").read_text()
