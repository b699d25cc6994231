"""The work a model call will do, counted before it starts, and how long that takes here.

A public call is refused when its work is over the app's limits (app/limits.py); one that is
allowed but expected to be long says so before it starts. The expected time is the call's
work (in token positions) times the seconds per position that calls of the same kind took on
this machine so far (an exponential average), so it adapts to the machine and its load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from engine import Engine, Request

# One decoded token costs about as much as this many prompt positions of a prefill (on the
# CPU a decode step is dominated by per-step overhead); only the ratio between calls matters.
DECODE_WEIGHT = 32
FIRST_GUESS_S = 1e-3  # seconds per position before a call of a kind has been timed
SMOOTHING = 0.3


def prompt_tokens(engine: Engine, request: Request) -> int:
    """Tokens of the linked prompt (template, prefix, chunks, question) without running it."""
    return engine.plan(request).num_tokens


def check_context(num_prompt_tokens: int, max_new_tokens: int, limit: int) -> None:
    """Refuse a prompt whose tokens plus the answer's are over the public call limit."""
    if num_prompt_tokens + max_new_tokens > limit:
        raise ValueError(f"the prompt has {num_prompt_tokens:,} tokens; with {max_new_tokens} "
                         f"new tokens it is over this app's limit of {limit:,} tokens per call:"
                         " choose fewer or shorter chunks")


def answer_work(num_prompt_tokens: int, max_new_tokens: int, num_runs: int) -> int:
    """Positions computed by `num_runs` runs of one prompt (at most a full prefill each)."""
    return num_runs * (num_prompt_tokens + DECODE_WEIGHT * max_new_tokens)


def num_runs(requests: list[Request]) -> int:
    """Runs' worth of work in these requests: one each, and one more for an algorithm whose
    chunks need a compile variant (compiled on demand, at most the chunks once more)."""
    return len(requests) + sum(bool(r.algorithm.algorithm.compile_variant.name)
                               for r in requests)


class Estimator:
    """Seconds per position of work, learned per kind of call ("compile", "answer", ...)."""

    def __init__(self, long_call_s: float) -> None:
        self.long_call_s = long_call_s
        self._rate: dict[str, float] = {}
        self._lock = threading.Lock()

    def seconds(self, kind: str, work: float) -> float:
        with self._lock:
            return work * self._rate.get(kind, FIRST_GUESS_S)

    def record(self, kind: str, work: float, seconds: float) -> None:
        if work <= 0:
            return
        with self._lock:
            rate = seconds / work
            old = self._rate.get(kind)
            self._rate[kind] = rate if old is None else old + SMOOTHING * (rate - old)

    @contextmanager
    def timed(self, kind: str, work: float, what: str) -> Iterator[float]:
        """Announce a long call before it runs (a message box in the UI, a log line for API
        clients), time it, and learn from it -> the expected seconds."""
        expected = self.seconds(kind, work)
        if expected >= self.long_call_s:
            gr.Info(f"This will take about {expected:.0f} s on this machine ({what}); the "
                    "model serves one call at a time.", duration=max(5.0, expected))
        start = time.perf_counter()
        yield expected
        self.record(kind, work, time.perf_counter() - start)
