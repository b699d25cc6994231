"""How events are attached: model calls through one queue, buttons locked while they run."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

MODEL = "model"  # one concurrency group for every event that runs the model


class Guard:
    """Locks a session's model buttons while one of its model events runs.

    Every model event runs in the shared "model" concurrency group, one at a time across
    all users, so the engine never sees two requests at once from the queue.
    """

    def __init__(self, buttons: Sequence[gr.Button]) -> None:
        self.buttons = list(buttons)

    def _set(self, enabled: bool) -> list[Any]:
        return [gr.update(interactive=enabled) for _ in self.buttons]

    def start(self, trigger: Callable[..., Any], fn: Callable[..., Any], inputs: list[Any],
              outputs: list[Any], api_name: str) -> Any:
        """trigger -> lock the buttons -> fn (the named API endpoint); -> fn's dependency.

        Chain further steps on the result with `.then`, and end the chain with `release`.
        """
        locked = trigger(lambda: self._set(False), None, self.buttons, queue=False,
                         api_visibility="private", show_progress="hidden")
        return locked.then(fn, inputs, outputs, api_name=api_name, api_description=describe(fn),
                           concurrency_id=MODEL, concurrency_limit=1)

    def release(self, dependency: Any) -> Any:
        """Unlock the buttons after `dependency`, whether it succeeded or failed."""
        return dependency.then(lambda: self._set(True), None, self.buttons, queue=False,
                               api_visibility="private", show_progress="hidden")


def describe(fn: Callable[..., Any]) -> str:
    """The API description of a handler: its docstring (through a functools.partial)."""
    return inspect.getdoc(getattr(fn, "func", fn)) or ""


def private(trigger: Callable[..., Any], fn: Callable[..., Any], inputs: list[Any],
            outputs: list[Any]) -> Any:
    """A cheap UI-only event (no model call, no API endpoint)."""
    return trigger(fn, inputs, outputs, api_visibility="private", queue=False,
                   show_progress="hidden")
