"""How events are attached: every handler learns its visitor from the session, model calls
run one at a time (one queued per visitor), and buttons locked during a call unlock after it,
whether it succeeded or failed.

Gradio 6.31's front end fires a `.then` listener only after a success (after a failure it
fires `.failure` listeners), so the unlock step is attached with both `.success` and
`.failure` to the last step, and with `.failure` to every step before it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from app.clients import visitor_of
from app.lab import Lab
from app.memory import trim

MODEL = "model"  # one concurrency group for every event that runs the model


def session_of(request: gr.Request | None, behind_proxy: bool = False) -> str:
    """The visitor of a call: its Gradio session (a page, or a gradio_client Client), which
    knows its client address (app/clients.py)."""
    return visitor_of(request, behind_proxy)


def bind(lab: Lab, fn: Callable[..., Any], model: bool = False) -> Callable[..., Any]:
    """A handler `fn(lab, session, *inputs[, progress])` as a Gradio event function
    `(*inputs[, progress], request)`: its signature names the inputs for the API, and Gradio
    fills `request`, from which the session comes. A model call's end frees the visitor's
    queue slot (taken by `validator`) and returns the memory it freed (app/memory.py)."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=None, annotation=gr.Request)
    signature = inspect.Signature([*params, request])

    def arguments(args: tuple, kwargs: dict) -> tuple[str, dict[str, Any]]:
        bound = signature.bind(*args, **kwargs)
        return (session_of(bound.arguments.pop("request", None), lab.limits.behind_proxy),
                bound.arguments)

    if inspect.isgeneratorfunction(fn):
        def handler(*args: Any, **kwargs: Any) -> Any:
            session, given = arguments(args, kwargs)
            try:
                yield from fn(lab, session, **given)
            finally:
                if model:
                    lab.libraries.end_call(session)
                    trim()
    else:
        def handler(*args: Any, **kwargs: Any) -> Any:
            session, given = arguments(args, kwargs)
            try:
                return fn(lab, session, **given)
            finally:
                if model:
                    lab.libraries.end_call(session)
                    trim()
    return _named(handler, fn, signature)


def validator(lab: Lab, fn: Callable[..., Any]) -> Callable[..., Any]:
    """The check Gradio runs when a call of `fn` is queued: one queued or running model call
    per visitor. A refusal names the reason (gradio_client raises it as a ValidationError)."""
    params = list(inspect.signature(fn).parameters.values())[2:]
    num_inputs = sum(1 for p in params if not isinstance(p.default, gr.Progress))
    if num_inputs == 0:  # Gradio 6.31 cannot validate an event without inputs
        raise ValueError(f"{fn.__name__}: a model endpoint needs at least one input")
    request = inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                default=None, annotation=gr.Request)
    signature = inspect.Signature([*params, request])

    def check(*args: Any, **kwargs: Any) -> list[dict]:
        bound = signature.bind(*args, **kwargs)
        try:
            lab.libraries.begin_call(session_of(bound.arguments.get("request"),
                                                lab.limits.behind_proxy))
        except ValueError as err:
            return [gr.validate(False, str(err))] + [gr.validate(True, "")] * (num_inputs - 1)
        return [gr.validate(True, "")] * num_inputs
    return _named(check, fn, signature)


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
         api_name: str | None = None, model: bool = False, **options: Any) -> Step:
    """A handler `fn(lab, session, ...)` as a chain step (see `bind` and `validator`)."""
    return Step(bind(lab, fn, model), inputs, outputs, api_name, model,
                validator(lab, fn) if model else None, options)


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
        for step in steps:
            dep = step.attach(dep.success)
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
