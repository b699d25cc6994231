"""Who may join the model's queue: decided once, when a call joins, for every route.

Gradio checks its queue's size before it awaits an event's validator, so concurrent joins all
passed that check together (120 joins were accepted against a cap of 32). Here, in the
validator (app/wiring.py), a model call is admitted only if
- its text is within the app's bounds in characters and its estimated model time within the
  bound per call (the endpoint's estimate, app/budget.py), both checked before anything runs;
- its visitor has no other model call queued or running (app/sessions.py `begin_call`);
- fewer than `queue_size` model calls of all visitors are queued or running, counted and taken
  under one lock, so concurrent joins cannot pass together.
An admitted call holds its place until its handler ends (`done`), its visitor leaves
(`leave`), or Gradio no longer holds its event (`live`: a client that closes its stream has its
queued events dropped unrun, and must not keep their places). A model handler runs only for a
call that holds its place, so a route that skips the queue cannot run model work beside it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from app.budget import Estimate, Estimator, OverBudget
from app.limits import AppLimits
from app.sessions import Libraries

# An endpoint's estimate: (lab, session, **its inputs) -> Estimate (None: known only once the
# handler has read its input); it raises OverBudget for text over the character bounds, and a
# ValueError or KeyError for input the handler refuses.
EstimateFn = Callable[..., Estimate | None]
GRACE_S = 10.0  # an admitted call's event reaches Gradio's queue right after its validator
UNSEEN_S = 1.0  # and moves from waiting to running in one step another thread may straddle


class Admission:
    """The model calls queued or running, all visitors together, and the rules to join them."""

    def __init__(self, limits: AppLimits, libraries: Libraries, estimator: Estimator) -> None:
        self.limits, self.libraries, self.estimator = limits, libraries, estimator
        self._calls: dict[str, float] = {}  # session -> when its call was admitted
        self._unseen: dict[str, float] = {}  # session -> since when Gradio shows no event of it
        self._lock = threading.Lock()
        # Whether Gradio holds an event of the session, queued or running (set at launch);
        # without it, a place is kept for at most a session's idle time.
        self.live: Callable[[str], bool] | None = None
        self.grace_s = GRACE_S

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._calls)

    def within_budget(self, estimate: Estimate) -> Estimate:
        """The estimate, if it is within the app's bound of model time per call."""
        return self.estimator.check(estimate, self.limits.max_call_s)

    def screen(self, lab: Any, session: str, estimate: EstimateFn | None,
               inputs: dict[str, Any]) -> Estimate | None:
        """Refuse a call over a bound before it is queued (OverBudget); input the handler
        refuses anyway (a ValueError or KeyError of its own) passes here, to be named there."""
        if estimate is None:
            return None
        try:
            planned = estimate(lab, session, **inputs)
        except OverBudget:
            raise
        except (ValueError, KeyError, TypeError):
            return None
        return None if planned is None else self.within_budget(planned)

    def check(self) -> None:
        """Refuse, without taking a place, while the queue is full."""
        with self._lock:
            self._expire()
            self._refuse_when_full()

    def admit(self, session: str) -> None:
        """Take a place in the model's queue for the session's call, or refuse it."""
        with self._lock:
            self._expire()
            self.libraries.begin_call(session)  # one per visitor: raises while one is out
            try:
                self._refuse_when_full()
            except ValueError:
                self.libraries.end_call(session)
                raise
            self._calls[session] = time.monotonic()

    def holds(self, session: str) -> bool:
        """Whether the session's call was admitted (a model handler runs only then)."""
        with self._lock:
            return session in self._calls

    def done(self, session: str) -> None:
        """The session's call ended (success or failure): its place is free."""
        with self._lock:
            self._calls.pop(session, None)
            self._unseen.pop(session, None)
        self.libraries.end_call(session)

    def leave(self, session: str) -> None:
        """The session's page closed: Gradio drops its queued events, so its place is free."""
        with self._lock:
            self._calls.pop(session, None)
            self._unseen.pop(session, None)

    def _refuse_when_full(self) -> None:
        if len(self._calls) >= self.limits.queue_size:
            raise OverBudget(f"the model's queue is full ({len(self._calls)} calls queued or "
                             "running, all visitors together): try again in a minute")

    def _expire(self) -> None:
        now, live = time.monotonic(), self.live
        for session, since in list(self._calls.items()):
            if live is None:
                gone = now - since > self.limits.session_idle_s
            elif now - since <= self.grace_s or live(session):
                self._unseen.pop(session, None)
                gone = False
            else:  # unseen twice, a moment apart: not an event between waiting and running
                gone = now - self._unseen.setdefault(session, now) > UNSEEN_S
            if gone:
                del self._calls[session]
                self._unseen.pop(session, None)
                self.libraries.end_call(session)
