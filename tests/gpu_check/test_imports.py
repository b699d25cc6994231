"""The check needs nothing the GPU machine lacks beyond the bundle's wheels: importing every
module it runs there (and the engine and benchmark modules they use) loads no Plotly, pypdf,
Rouge or Gradio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK_MODULES = ("gpu_check.run", "gpu_check.steps", "gpu_check.models", "gpu_check.forward",
                 "gpu_check.invariants", "gpu_check.fidelity", "gpu_check.speed",
                 "gpu_check.summary", "gpu_check.parts")


def test_the_check_imports_no_plotting_pdf_rouge_or_gradio():
    from gpu_check.steps import FORBIDDEN
    code = ("import importlib, json, sys\n"
            f"for name in {CHECK_MODULES!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert {"engine", "bench", "torch"} <= loaded, "the modules were imported"
    assert not loaded & set(FORBIDDEN), f"the check imports {sorted(loaded & set(FORBIDDEN))}"
    assert "visualize" not in loaded, "figures are drawn afterwards, not by the check"
