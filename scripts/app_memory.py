"""Does the app's memory stay flat? Start app.py in a subprocess, warm it up, then send mixed
requests from many gradio_client visitors over a fixed store and report the server's RSS.

    .venv/bin/python scripts/app_memory.py --requests 300 --warmup 60 --users 8 [--cache DIR]

Every request comes from a fresh Client (a new visitor, a new Gradio session), as on a public
Space: it compiles two of the same few texts (its own copies: a visitor's chunks are its own,
and go when it closes), then compares, inspects, looks at its library, or now and then runs
a small speed sweep.
RSS is read from /proc/<pid>/status (VmRSS) after the warm-up and after the requests. The app
runs on the model EPIC_MODEL names (the bundled SmolLM2 by default) in a cache directory
whose converted model is linked from ~/.cache/epic-lab; a fresh one's first start compiles
the examples and plays the story (`--cache` reuses one).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [f"Document {i}. " + " ".join(f"Fact {i}.{j}: the value of item {j} is {i * j}."
                                      for j in range(40)) for i in range(3)]
PREFIXES = ["You are a careful assistant.", "Answer briefly.", "Be precise.", "Reply in a word."]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def wait_for(url: str, process: subprocess.Popen, timeout_s: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}")
        try:
            Client(url, verbose=False).close()
            return time.monotonic() - start
        except Exception:
            time.sleep(1)
    raise TimeoutError(f"no answer from {url} after {timeout_s} s")


def one_request(url: str, rng: random.Random) -> str:
    client = Client(url, verbose=False)
    try:
        # Two of the same texts, compiled into this visitor's own library (released on close).
        order = [client.predict(TEXTS[index], "doc", api_name="/compile_text")[1][0]["key"]
                 for index in rng.sample(range(len(TEXTS)), 2)]
        kind = rng.choices(["compare", "inspect", "stats", "bench"], [55, 25, 17, 3])[0]
        if kind == "compare":
            client.predict(rng.choice(PREFIXES), order, "What is item 7?",
                           ["full_recompute", "prefix_cache", "naive", "legolink"], 16, 0.15,
                           4, api_name="/run_compare")
        elif kind == "inspect":
            client.predict(rng.choice(PREFIXES), order, "What is item 7?", ["naive", "legolink"],
                           16, 0.15, 2, rng.random() < 0.5, 0, True,
                           rng.choice(["minmax", "softmax", "difference"]), 4,
                           api_name="/inspect")
        elif kind == "stats":
            client.predict(api_name="/store_stats")
        else:
            client.predict([256], 1, ["naive", "legolink"], 16, 0.15, api_name="/bench_speed")
        return kind
    finally:
        client.close()


def run(url: str, count: int, users: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    seeds = [rng.random() for _ in range(count)]
    with ThreadPoolExecutor(users) as pool:
        kinds = list(pool.map(lambda s: one_request(url, random.Random(s)), seeds))
    return {kind: kinds.count(kind) for kind in sorted(set(kinds))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--cache", type=Path, help="the app's cache directory (default: a "
                        "fresh one, whose first start compiles the examples and plays the story)")
    args = parser.parse_args()
    cache = args.cache or Path(tempfile.mkdtemp(prefix="epic-memory-"))
    converted = Path.home() / ".cache" / "epic-lab" / "converted"
    if converted.is_dir() and not (cache / "converted").exists():
        (cache / "converted").symlink_to(converted)
    # Every visitor here comes from one address: let it hold what many addresses would.
    env = os.environ | {"EPIC_CACHE_DIR": str(cache), "GRADIO_SERVER_PORT": str(args.port),
                        "GRADIO_SERVER_NAME": "127.0.0.1", "PYTHONUNBUFFERED": "1",
                        "EPIC_CLIENT_SHARE": "1"}
    log = open(cache / "app.log", "w")
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        print(f"first start: answers after {wait_for(url, process, 1800):.1f} s", flush=True)
        print(f"after start: RSS {rss_mib(process.pid):.0f} MiB", flush=True)
        start = time.monotonic()
        mix = run(url, args.warmup, args.users, seed=1)
        before = rss_mib(process.pid)
        print(f"after {args.warmup} warm-up requests {mix} in {time.monotonic() - start:.0f} s:"
              f" RSS {before:.0f} MiB", flush=True)
        start = time.monotonic()
        mix = run(url, args.requests, args.users, seed=2)
        after = rss_mib(process.pid)
        print(f"after {args.requests} more requests {mix} in {time.monotonic() - start:.0f} s:"
              f" RSS {after:.0f} MiB, {after - before:+.0f} MiB since the warm-up", flush=True)
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
        print(f"server log: {cache / 'app.log'}")


if __name__ == "__main__":
    main()
