"""Replicas as separate processes on one Redis: what one compiles, the other links unchanged;
texts asked of both at once are compiled once in all.

Two replica processes serve the tests of this module (starting one costs seconds): each reads
one JSON command a line and answers one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.engine.redis_server import REDIS_SERVER, RedisServer

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

REPLICA = textwrap.dedent("""
    import json, sys, threading, time
    import engine.link.compile as compiling
    from engine import Engine, EngineConfig

    # The real compile, then a pause: a wider window for two replicas to race on one text.
    compile_chunk = compiling.compile_chunk
    compiling.compile_chunk = lambda m, ids: (compile_chunk(m, ids), time.sleep(0.2))[0]
    e = Engine(EngineConfig(model={model!r}, device="cpu", dtype="float32", cache_dir={cache!r}))
    assert e.store.tier is not None, "EPIC_STORE_URL did not reach the store"

    def race(texts):  # four threads compile every text, each starting at another one
        keys = [None] * len(texts)
        def work(shift):
            for i in [(j + shift) % len(texts) for j in range(len(texts))]:
                keys[i] = e.compile(texts[i])
        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        return keys

    for line in sys.stdin:
        cmd, out = json.loads(line), {{}}
        if cmd["op"] == "compile":
            out["keys"] = [e.compile(t, title=f"doc {{i}}") for i, t in enumerate(cmd["texts"])]
        elif cmd["op"] == "race":
            out["keys"] = race(cmd["texts"])
        elif cmd["op"] == "run":
            r = e.run("You answer briefly.", cmd["keys"], "Which river?", "legolink",
                      recompute_k=4, max_new_tokens=8)
            out = {{"token_ids": list(r.token_ids), "mask": list(r.mask)}}
        s = e.store.stats()
        out.update(num_compiled=s.num_compiled, num_fetched=s.num_fetched, warning=s.warning)
        print(json.dumps(out), flush=True)
""")


class Replica:
    def __init__(self, model_dir: Path, cache: Path, url: str) -> None:
        code = REPLICA.format(model=str(model_dir), cache=str(cache))
        env = {**os.environ, "EPIC_STORE_URL": url}  # chosen by the environment, as in the app
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, op: str, **kwargs) -> None:
        self.proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"the replica process died (exit code {self.proc.poll()})"
        return json.loads(line)

    def ask(self, op: str, **kwargs) -> dict:
        self.send(op, **kwargs)
        return self.answer()


@pytest.fixture(scope="module")
def replicas(tiny4_model_dir, tmp_path_factory):
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server is not installed (scripts/test.sh installs Debian's package)")
    tmp = tmp_path_factory.mktemp("replicas")
    server = RedisServer(tmp).start()
    pair = [Replica(tiny4_model_dir, tmp / "cache", server.url) for _ in range(2)]
    yield pair
    for replica in pair:
        replica.proc.stdin.close()
        replica.proc.wait(timeout=60)
    server.kill()


def test_a_second_process_links_what_the_first_compiled(replicas):
    a, b = replicas
    texts = [f"Document {i}: " + "a sentence about rivers and deltas. " * (3 + i)
             for i in range(4)]
    before_a, before_b = a.ask("stats"), b.ask("stats")
    keys = a.ask("compile", texts=texts)["keys"]
    out_a = a.ask("run", keys=keys[::-1])
    out_b = b.ask("run", keys=keys[::-1])
    assert out_a["num_compiled"] - before_a["num_compiled"] == len(texts)
    assert out_b["num_compiled"] == before_b["num_compiled"], "B compiled what A had shared"
    assert out_b["num_fetched"] - before_b["num_fetched"] == len(texts)
    assert (out_b["token_ids"], out_b["mask"]) == (out_a["token_ids"], out_a["mask"]), (
        "B's greedy answer or recompute mask differs from A's")
    assert out_a["warning"] == out_b["warning"] == ""


def test_two_processes_of_four_threads_compile_each_text_once(replicas):
    texts = [f"Race {i}: " + "mountain passes and paper money. " * (2 + i) for i in range(6)]
    before = [r.ask("stats") for r in replicas]
    for r in replicas:  # both start at once
        r.send("race", texts=texts)
    after = [r.answer() for r in replicas]
    assert after[0]["keys"] == after[1]["keys"] and None not in after[0]["keys"]
    compiled = [x["num_compiled"] - y["num_compiled"] for x, y in zip(after, before, strict=True)]
    fetched = [x["num_fetched"] - y["num_fetched"] for x, y in zip(after, before, strict=True)]
    assert sum(compiled) == len(texts), f"compiled {compiled} times for {len(texts)} texts"
    assert [c + f for c, f in zip(compiled, fetched, strict=True)] == [len(texts)] * 2, (
        f"each text reaches each process once (compiled {compiled}, read {fetched})")
