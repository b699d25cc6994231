"""Figures from a GPU check's results, drawn here (Plotly is not on the GPU machine):

    .venv/bin/python -m gpu_check figures DIR [TO]   # TO/speed-*.html from DIR/speed-*.json

The same figure as `python -m bench speed` writes (median TTFT against context length per
algorithm), one per swept model. The only module of the check that imports Plotly (through
bench.report); the check itself never imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.report import write_speed_html
from gpu_check.summary import SPEED_STEPS


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        sys.exit("usage: python -m gpu_check figures DIR [TO]  (TO defaults to DIR)")
    results = Path(argv[0])
    to = Path(argv[-1])  # the results may lie read-only where the device tool put them
    drawn = []
    for name in SPEED_STEPS:
        path = results / f"{name}.json"
        if path.is_file():
            step = json.loads(path.read_text())
            if step["result"].get("sweep"):
                drawn.append(write_speed_html(step["result"], to / f"{name}.html"))
    if not drawn:
        sys.exit(f"no speed results in {results}")
    print("\n".join(str(p) for p in drawn))
    return 0
