"""What keeping each visitor's uploads apart costs: N visitors compile the same document
through the app's own handler, and the store's bytes, compile passes and compile seconds are
reported, with each visitor's salt (as served) and, for comparison, with one shared key per
text (as before issue 19, when the second visitor's compile was a 0.2 s lookup that told it
someone had compiled that text).

    EPIC_CACHE_DIR=... .venv/bin/python scripts/salt_cost.py --visitors 4 --repeat 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from app import library
from app.lab import Lab
from app.limits import AppLimits
from engine import Engine

ROOT = Path(__file__).resolve().parents[1]


def measure(lab: Lab, text: str, visitors: int, shared_key: bool) -> tuple[int, int, float]:
    """-> (bytes the visitors' chunks add to the store, compile passes, seconds compiling)."""
    store = lab.engine.store
    bytes_before, passes_before = store.stats().num_bytes, store.num_compiled
    if shared_key:  # the old behaviour: every visitor's copy under one key
        lab.libraries.salt = lambda session: ""  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        for number in range(visitors):
            library.compile_text(lab, f"visitor-{number}", text, "the same document")
        seconds = time.perf_counter() - start
    finally:
        vars(lab.libraries).pop("salt", None)
    result = store.stats().num_bytes - bytes_before, store.num_compiled - passes_before, seconds
    for number in range(visitors):
        lab.libraries.release(f"visitor-{number}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=2, help="copies of the example documents "
                        "in the one document each visitor compiles")
    args = parser.parse_args()
    lab = Lab.open(Engine(), AppLimits(client_share=1.0))
    documents = sorted((ROOT / "assets" / "documents").glob("*.md"))
    text = "\n\n".join(f"{doc.read_text()}\n(copy {n})" for n in range(args.repeat)
                       for doc in documents)
    tokens = len(lab.engine.tokenizer(text)["input_ids"])
    per_token = lab.engine.store.format.bytes_per_token
    print(f"{lab.engine.model.model_id}, {lab.engine.config.dtype}: {per_token:,} bytes of KV "
          f"per token; one document of {tokens:,} tokens, {args.visitors} visitors")
    for name, shared in (("one key per text (before)", True), ("a salt per visitor (now)", False)):
        num_bytes, passes, seconds = measure(lab, text, args.visitors, shared)
        print(f"{name:>26}: store +{num_bytes / 2**20:,.1f} MiB, {passes} compile passes, "
              f"{seconds:.1f} s compiling")


if __name__ == "__main__":
    main()
