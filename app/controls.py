"""Input controls: one slider per algorithm parameter, built from its declaration (range,
default, label, help: never numbers of the UI's own), the endpoints' handlers given an input
for each knob declared after k and ratio, and small Gradio template components that make the
served API honest.

A model endpoint has a validator (one queued call per visitor, app/wiring.py), and Gradio runs
the inputs' preprocessing before it: a refusal there reaches an API client as a bare HTTP 400
with no message. So these inputs pass what they cannot use on to the handler, which refuses
it with a message naming the setting and its range (a None or text for a number, a value out
of range, an unknown algorithm or view):

- `Slider`, `Choices` (a CheckboxGroup) and `Radio` pass any value through (the schema of
  `Choices` of numbers says integer);
- `FreeDropdown` (chunk keys, questions) declares any string in the API schema, where Gradio
  lists only the choices the page happens to show, though any value is accepted.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr

from app.lab import Lab
from engine import Parameter, parameters, users


class Slider(gr.Slider):
    """A gr.Slider that leaves the checking of its value to the handler."""

    is_template = True  # drawn by Gradio's own slider

    def preprocess(self, payload: Any) -> Any:
        if isinstance(payload, bool) or not isinstance(payload, int | float):
            return payload
        if not self.minimum <= payload <= self.maximum:
            return payload
        return super().preprocess(payload)


class Choices(gr.CheckboxGroup):
    """A gr.CheckboxGroup that leaves refusing unknown values to the handler, and whose API
    schema gives its choices' own type (Gradio's says string: numbers were refused)."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload

    def api_info(self) -> dict[str, Any]:
        info = super().api_info()
        values = [value for _, value in self.choices]
        if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            info["items"] = {"enum": values, "type": "integer"}
        return info


class Radio(gr.Radio):
    """A gr.Radio that leaves refusing unknown values to the handler."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload


class FreeDropdown(gr.Dropdown):
    """A dropdown (with allow_custom_value) whose API schema takes any string, or list of
    strings, rather than only the choices shown."""

    is_template = True  # drawn by Gradio's own dropdown

    def api_info(self) -> dict[str, Any]:
        text = {"type": "string"}
        return {"type": "array", "items": text} if self.multiselect else text


# The knobs every endpoint has named right after its algorithms since its first release; those
# declared since come after the endpoint's other inputs (`with_knobs`).
NAMED = ("k", "ratio")


def knob(parameter: Parameter, tab: str) -> Slider:
    """The slider of one parameter on one tab, labelled with the algorithms it sets."""
    return Slider(parameter.low, parameter.high, value=parameter.default, step=parameter.step,
                  label=f"{parameter.label} ({', '.join(users(parameter))})",
                  info=parameter.help, elem_id=f"{tab}-{parameter.name}")


def knobs(tab: str) -> dict[str, Slider]:
    """One slider per declared parameter, by name (k, ratio, then any declared since)."""
    return {p.name: knob(p, tab) for p in parameters()}


def appended(sliders: dict[str, Slider]) -> list[Slider]:
    """The sliders of the knobs besides k and ratio: the inputs `with_knobs` adds after an
    endpoint's others, in the same order."""
    return [slider for name, slider in sliders.items() if name not in NAMED]


def with_knobs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A handler `fn(lab, session, ..., k, ratio, ..., [progress,] **knobs)` with one named
    input per declared parameter its signature does not name, after its other inputs (before
    `progress`) and with the parameter's default: an endpoint's positions never move, and a
    caller who does not know a new knob gets its default."""
    signature = inspect.signature(fn)
    given = [p for p in signature.parameters.values() if p.kind != p.VAR_KEYWORD]
    progress = [p for p in given if isinstance(p.default, gr.Progress)]
    names = {p.name for p in given}
    extra = [inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                               default=p.default)
             for p in parameters() if p.name not in NAMED]
    clash = [p.name for p in extra if p.name in names]
    if clash or not set(NAMED) <= names:
        raise TypeError(f"{fn.__name__}: its inputs must name k and ratio and no other knob "
                        f"({', '.join(clash)} is one of its inputs)")
    if extra and len(given) == len(signature.parameters):
        raise TypeError(f"{fn.__name__} takes no **knobs: it cannot take {extra[0].name}")
    if inspect.isgeneratorfunction(fn):
        def handler(*args: Any, **kwargs: Any) -> Any:
            yield from fn(*args, **kwargs)
    else:
        def handler(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)
    handler.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*[p for p in given if p not in progress], *extra, *progress])
    handler.__name__ = handler.__qualname__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


def max_new_tokens(lab: Lab, value: int = 32) -> Slider:
    limit = lab.limits.new_tokens_limit(lab.engine.config)
    return Slider(1, limit, value=min(value, limit), step=1,
                  label="max new tokens", info=f"at most {limit} on this app")


class UploadedFiles(gr.File):
    """A gr.File that takes only files uploaded to this app. A plain gr.File given a URL by an
    API client fetches it into the server's cache, past every bound on uploads (app/
    upload_guard.py); this one refuses it."""

    is_template = True  # drawn by Gradio's own file box

    async def async_move_resource_to_block_cache(self, url_or_file_path: Any) -> str | None:
        if isinstance(url_or_file_path, str) and "://" in url_or_file_path:
            raise gr.Error("upload files to this app first: a URL is not fetched",
                           print_exception=False)
        return await super().async_move_resource_to_block_cache(url_or_file_path)

