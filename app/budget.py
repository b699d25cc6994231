"""A model call's cost, estimated before it is queued, and the one bound every call is held to.

Every model endpoint has an estimate (its work from app/cost.py, priced by this machine's
calibration): a call whose estimate is over `AppLimits.max_call_s` is refused before it takes
a place in the model's queue, with the estimate and what to shrink in the message; one that
is allowed but long says so before it starts. Each call's measured time corrects the prices
for its kind of call (an exponential average of measured over estimated; a kind not seen yet
takes the correction of all calls so far), so the estimates follow the machine's load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import gradio as gr

from app.cost import Prices, Shape, Work, calibrate, compile_work, decode_work
from engine import Engine

SMOOTHING = 0.3
CORRECTION_RANGE = (0.25, 4.0)  # one odd call moves the prices this far at most
ANY_KIND = "*"  # the correction learned from calls of every kind: the machine's load


class OverBudget(ValueError):
    """A call refused before it is queued: over a bound of this app (time or characters)."""


def check_context(num_prompt_tokens: int, max_new_tokens: int, limit: int) -> None:
    """Refuse a prompt whose tokens plus the answer's are over the public call limit."""
    if num_prompt_tokens + max_new_tokens > limit:
        raise ValueError(f"the prompt has {num_prompt_tokens:,} tokens; with {max_new_tokens} "
                         f"new tokens it is over this app's limit of {limit:,} tokens per call:"
                         " choose fewer or shorter chunks")


def check_chars(text: object, name: str, limit: int) -> None:
    """Refuse text over `limit` characters before anything tokenizes it."""
    if isinstance(text, str) and len(text) > limit:
        raise OverBudget(f"the {name} has {len(text):,} characters, over this app's limit of "
                         f"{limit:,}: shorten it")


def seconds_text(seconds: float) -> str:
    """"236 s", "59 s", "4.2 s", "0.013 s": whole seconds from 10, else two digits."""
    return f"{seconds:,.0f} s" if seconds >= 10 else f"{seconds:.2g} s"


@dataclass(frozen=True)
class Estimate:
    """What one call will cost: its kind, its work, the seconds expected here, and words for
    the messages (what it is; what to shrink when it is too much)."""

    kind: str  # "compile", "answer", "inspect", "story", "bench_speed", ...
    work: Work
    seconds: float
    what: str
    shrink: str


@dataclass
class Timer:
    """The running call's estimate; set `actual` to the work it really did (answers that ended
    before their last token) before the call ends, to learn from the right amount."""

    estimate: Estimate
    actual: Work | None = None


@dataclass
class Estimator:
    """Prices of work on this machine (calibrated at start-up), corrected per kind of call by
    what calls took."""

    shape: Shape
    prices: Prices
    long_call_s: float
    _correction: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def calibrated(cls, engine: Engine, long_call_s: float) -> Estimator:
        """Prices measured on `engine` now (app/cost.py `calibrate`, a few seconds on a CPU)."""
        return cls(Shape.of(engine), calibrate(engine), long_call_s)

    def seconds(self, kind: str, work: Work) -> float:
        """Seconds `work` will take in a call of `kind`: at the calibrated prices, corrected
        by what calls of this kind took (of any kind, before the first of this one)."""
        with self._lock:
            correction = self._correction.get(kind, self._correction.get(ANY_KIND, 1.0))
            return self.prices.seconds(self.shape, work) * correction

    def estimate(self, kind: str, work: Work, what: str, shrink: str) -> Estimate:
        return Estimate(kind, work, self.seconds(kind, work), what, shrink)

    def check(self, estimate: Estimate, bound_s: float) -> Estimate:
        """Refuse a call whose estimate is over `bound_s`, naming its estimate and the fix."""
        if estimate.seconds > bound_s:
            raise OverBudget(
                f"this call would take about {seconds_text(estimate.seconds)} of model time on "
                f"this machine ({estimate.what}), over this app's limit of "
                f"{seconds_text(bound_s)} per call: {estimate.shrink}")
        return estimate

    def record(self, kind: str, work: Work, seconds: float) -> None:
        """Learn from a call of `kind` that did `work` in `seconds`."""
        priced = self.prices.seconds(self.shape, work)
        if priced <= 0:
            return
        low, high = CORRECTION_RANGE
        with self._lock:
            for key in (kind, ANY_KIND):
                old = self._correction.get(key, self._correction.get(ANY_KIND, 1.0))
                new = old + SMOOTHING * (seconds / priced - old)
                self._correction[key] = min(max(new, low), high)

    @contextmanager
    def timed(self, estimate: Estimate) -> Iterator[Timer]:
        """Announce a long call before it runs (a message box in the UI, a log line for API
        clients), time it, and learn from it."""
        if estimate.seconds >= self.long_call_s:
            gr.Info(f"This will take about {seconds_text(estimate.seconds)} on this machine "
                    f"({estimate.what}); the model serves one call at a time.",
                    duration=max(5.0, estimate.seconds))
        timer = Timer(estimate)
        start = time.perf_counter()
        yield timer
        self.record(estimate.kind, timer.actual or estimate.work, time.perf_counter() - start)

    def describe(self) -> str:
        """The measured prices in words: a 1,024-token prefill and one decode step here."""
        layers = self.shape.num_layers
        prefill = self.prices.seconds(self.shape, compile_work(1024, layers))
        step = self.prices.seconds(self.shape, decode_work(1024, 2, layers))
        return (f"measured on this machine at start-up: a 1,024-token prefill ≈ {prefill:.2f} s,"
                f" one decoded token ≈ {step * 1e3:.0f} ms")
