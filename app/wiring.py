"""How events are attached: every handler learns its visitor from the session, model calls
run one at a time in one lane (admitted when they join the queue: app/admission.py), redraws
in a lane of their own, and buttons locked during a call unlock after it, whether it succeeded
or failed.

Gradio 6.31's front end fires a `.then` listener only after a success (after a failure it
fires `.failure` listeners), so the unlock step is attached with both `.success` and
`.failure` to the last step, and with `.failure` to every step before it. After a validator's
refusal it fires neither: a page's model step is therefore preceded by a check step that
refuses what the validator would (over a bound, a full queue) as an error, which shows its
message and unlocks the page; the validator stays the rule for every other client.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from app.admission import EstimateFn
from app.agents import agent_session
from app.clients import Visitor, visitor_of
from app.errors import message
from app.lab import Lab
from app.memory import trim

MODEL = "model"  # one concurrency group for every event that runs the model
REDRAW = "redraw"  # and one for redrawing kept attention scores (no model call)
CHECK = "check"  # and one for a page's checks before a model call (tokenizing, estimating)
CHECKS_AT_ONCE = 2
OUTSIDE_QUEUE = ("model calls are taken through the queue only: join it "
                 "(gradio_client does; /gradio_api/run is closed to them)")


def session_of(request: gr.Request | None, behind_proxy: bool = False,
               endpoint: str | None = None) -> str:
    """The visitor of a call of `endpoint` (a handler's name): its Gradio session (a page, or a
    gradio_client Client), or the library an agent's secret header names (app/agents.py; an
    MCP call of anything but a tool is refused), which knows its client address
    (app/clients.py)."""
    visitor = visitor_of(request, behind_proxy)
    try:
        named = agent_session(getattr(request, "headers", None), endpoint)
    except ValueError as err:
        raise gr.Error(message(err), print_exception=False) from err
    return visitor if named is None else Visitor(named, visitor.client)


def bind(lab: Lab, fn: Callable[..., Any], model: bool = False) -> Callable[..., Any]:
    """A handler `fn(lab, session, *inputs[, progress])` as a Gradio event function
    `(*inputs[, progress], request)`: its signature names the inputs for the API, and Gradio
    fills `request`, from which the session comes. A model handler runs only for a call the
    validator admitted; its end frees the call's place in the queue and returns the memory
    it freed (app/memory.py)."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=None, annotation=gr.Request)
    signature = inspect.Signature([*params, request])

    def arguments(args: tuple, kwargs: dict) -> tuple[str, dict[str, Any]]:
        bound = signature.bind(*args, **kwargs)
        return (session_of(bound.arguments.pop("request", None), lab.limits.behind_proxy,
                           fn.__name__),
                bound.arguments)

    def admitted(session: str) -> None:
        if model and not lab.admission.holds(session):
            raise gr.Error(OUTSIDE_QUEUE, print_exception=False)

    def ended(session: str) -> None:
        if model:
            lab.admission.done(session)
            trim()

    if inspect.isgeneratorfunction(fn):
        def handler(*args: Any, **kwargs: Any) -> Any:
            session, given = arguments(args, kwargs)
            admitted(session)
            try:
                yield from fn(lab, session, **given)
            finally:
                ended(session)
    else:
        def handler(*args: Any, **kwargs: Any) -> Any:
            session, given = arguments(args, kwargs)
            admitted(session)
            try:
                return fn(lab, session, **given)
            finally:
                ended(session)
    return _named(handler, fn, signature)


def _inputs(fn: Callable[..., Any]) -> tuple[inspect.Signature, int]:
    """The Gradio signature of a handler's inputs (a `request` added) and how many there are."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=None, annotation=gr.Request)
    return (inspect.Signature([*params, request]),
            sum(1 for p in params if not isinstance(p.default, gr.Progress)))


def _given(signature: inspect.Signature, args: tuple, kwargs: dict,
           behind_proxy: bool, endpoint: str) -> tuple[str, dict]:
    """(session, the inputs by name) of a call; a progress tracker is no input."""
    bound = signature.bind(*args, **kwargs)
    session = session_of(bound.arguments.pop("request", None), behind_proxy, endpoint)
    return session, {k: v for k, v in bound.arguments.items() if not isinstance(v, gr.Progress)}


def validator(lab: Lab, fn: Callable[..., Any],
              estimate: EstimateFn | None) -> Callable[..., Any]:
    """The check Gradio runs when a call of `fn` joins the queue, on every route: the call's
    text and estimated time within the app's bounds, one call per visitor, the queue's size
    (app/admission.py). A refusal names the reason (gradio_client raises it as a
    ValidationError); an admitted call holds a place until its handler ends."""
    signature, num_inputs = _inputs(fn)
    if num_inputs == 0:  # Gradio 6.31 cannot validate an event without inputs
        raise ValueError(f"{fn.__name__}: a model endpoint needs at least one input")

    def check(*args: Any, **kwargs: Any) -> list[dict] | dict:
        session, inputs = _given(signature, args, kwargs, lab.limits.behind_proxy,
                                 fn.__name__)
        try:
            lab.admission.screen(lab, session, estimate, inputs)
            lab.admission.admit(session)
        except ValueError as err:
            verdicts = ([gr.validate(False, message(err))]
                        + [gr.validate(True, "")] * (num_inputs - 1))
        else:
            verdicts = [gr.validate(True, "")] * num_inputs
        # Gradio wraps the value of a one-input validator in a list itself: a list returned
        # there reads as valid, whatever it says (the refusals of /story and /compile_files
        # were ignored so).
        return verdicts[0] if num_inputs == 1 else verdicts
    return _named(check, fn, signature)


def prechecked(lab: Lab, fn: Callable[..., Any],
               estimate: EstimateFn | None) -> Callable[..., Any]:
    """A page's check before the model step of `fn` (same inputs): it refuses what the
    validator would, as an error the page shows, and takes no place in the queue."""
    signature, _ = _inputs(fn)

    def check(*args: Any, **kwargs: Any) -> None:
        session, inputs = _given(signature, args, kwargs, lab.limits.behind_proxy,
                                 fn.__name__)
        try:
            lab.admission.screen(lab, session, estimate, inputs)
            lab.admission.check()
        except ValueError as err:
            raise gr.Error(message(err), print_exception=False) from err
    named = _named(check, fn, signature)
    named.__name__ = named.__qualname__ = f"check_{fn.__name__}"  # not the endpoint's name
    return named


def _named(wrapper: Callable[..., Any], fn: Callable[..., Any],
           signature: inspect.Signature) -> Callable[..., Any]:
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    # Real types, not strings: Gradio finds `request` through typing.get_type_hints.
    wrapper.__annotations__ = {"request": gr.Request}
    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    wrapper.__doc__ = inspect.getdoc(fn)
    return wrapper


def describe(fn: Callable[..., Any]) -> str:
    """The API description of a handler: its docstring's first paragraph."""
    return (inspect.getdoc(fn) or "").split("\n\n")[0]


@dataclass
class Step:
    """One step of a chain: a bound handler; `api_name` makes it a public endpoint, `model`
    runs it in the model's queue (one at a time, one queued per visitor)."""

    fn: Callable[..., Any]
    inputs: Sequence[Any]
    outputs: Sequence[Any]
    api_name: str | None = None
    model: bool = False
    check: Callable[..., Any] | None = None  # the validator of a model step
    options: dict[str, Any] = field(default_factory=dict)
    pre: Step | None = None  # a page's check before a model step (see the module's note)

    def attach(self, listener: Callable[..., Any]) -> Any:
        kwargs: dict[str, Any] = dict(self.options)
        if self.api_name:
            kwargs.update(api_name=self.api_name, api_description=describe(self.fn))
        else:
            kwargs.update(api_visibility="private")
        if self.model:
            kwargs.update(concurrency_id=MODEL, concurrency_limit=1, validator=self.check)
        else:
            kwargs.setdefault("concurrency_limit", None)
        return listener(self.fn, list(self.inputs), list(self.outputs), **kwargs)


def step(lab: Lab, fn: Callable[..., Any], inputs: Sequence[Any], outputs: Sequence[Any],
         api_name: str | None = None, model: bool = False,
         estimate: EstimateFn | None = None, **options: Any) -> Step:
    """A handler `fn(lab, session, ...)` as a chain step (see `bind` and `validator`); a model
    step's `estimate` (same inputs) is checked against the app's bounds when it joins the
    queue (None: the handler checks it, when only the call's own work can tell)."""
    if not model:
        return Step(bind(lab, fn), inputs, outputs, api_name, options=options)
    # Queued (a refusal reaches the page as a message only from a queued event), in a lane
    # of its own.
    pre = Step(prechecked(lab, fn, estimate), inputs, [],
               options={"concurrency_id": CHECK, "concurrency_limit": CHECKS_AT_ONCE,
                        "show_progress": "hidden"})
    return Step(bind(lab, fn, model), inputs, outputs, api_name, model,
                validator(lab, fn, estimate), options, pre)


class Guard:
    """Locks a page's action buttons while one of its chains runs, and unlocks them after
    the chain ends, by success or by failure."""

    def __init__(self, buttons: Sequence[gr.Button]) -> None:
        self.buttons = list(buttons)

    def _set(self, enabled: bool) -> list[Any]:
        return [gr.update(interactive=enabled) for _ in self.buttons]

    def chain(self, trigger: Callable[..., Any], steps: Sequence[Step]) -> Any:
        """trigger -> lock -> each step while the previous succeeded -> unlock; -> the last
        step's dependency."""
        dep = trigger(lambda: self._set(False), None, self.buttons, queue=False,
                      api_visibility="private", show_progress="hidden")
        for one in (one for step in steps for one in (step.pre, step) if one is not None):
            dep = one.attach(dep.success)
            dep.failure(lambda: self._set(True), None, self.buttons, queue=False,
                        api_visibility="private", show_progress="hidden")
        dep.success(lambda: self._set(True), None, self.buttons, queue=False,
                    api_visibility="private", show_progress="hidden")
        return dep


def private(trigger: Callable[..., Any], fn: Callable[..., Any], inputs: list[Any],
            outputs: list[Any]) -> Any:
    """A cheap UI-only event (no model call, no API endpoint)."""
    return trigger(fn, inputs, outputs, api_visibility="private", queue=False,
                   show_progress="hidden")


def redraw(lab: Lab, trigger: Callable[..., Any], fn: Callable[..., Any], inputs: list[Any],
           outputs: list[Any]) -> Any:
    """A redraw of kept results (no model call, no API endpoint) in the redraw lane: queued,
    at most `AppLimits.redraws` at once for all visitors, only a page's latest pending."""
    return trigger(fn, inputs, outputs, api_visibility="private", concurrency_id=REDRAW,
                   concurrency_limit=lab.limits.redraws, trigger_mode="always_last",
                   show_progress="hidden")
