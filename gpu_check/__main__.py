"""python -m gpu_check bundle | store | run | summary | figures (see README.md, 'GPU check')."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "bundle": "gpu_check.bundle",  # here: build .gpu_bundle/
    "store": "gpu_check.run",  # GPU machine, every call but the last: keep its weights parts
    "run": "gpu_check.run",  # GPU machine, last call: join the weights, run the check
    "summary": "gpu_check.summary",  # anywhere: the tables again, from an output folder
    "figures": "gpu_check.figures",  # here: HTML figures from an output folder (Plotly)
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python -m gpu_check {{{'|'.join(COMMANDS)}}} ... (--help for each)")
    command = sys.argv[1]
    module = importlib.import_module(COMMANDS[command])
    args = sys.argv[2:]
    sys.exit(module.main([command, *args]) if command in ("store", "run") else module.main(args))
