"""Input controls: the algorithm parameters built from the engine's config and the app's limits
(their ranges are those limits, never numbers of the UI's own), and small Gradio template
components that make the served API honest.

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

from typing import Any

import gradio as gr

from app.lab import Lab


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


def recompute_k(lab: Lab, label: str = "LegoLink k") -> Slider:
    config = lab.engine.config
    return Slider(0, config.max_recompute_k, value=config.recompute_k, step=1,
                  label=label, info="tokens recomputed at the start of each chunk that does "
                  "not open the prompt: they remove its false attention sink")


def recompute_ratio(lab: Lab, label: str = "CacheBlend ratio") -> Slider:
    return Slider(0, 1, value=lab.engine.config.recompute_ratio, step=0.05,
                  label=label, info="share of the cached tokens CacheBlend recomputes, chosen "
                  "by how far their values deviate")


def max_new_tokens(lab: Lab, value: int = 32) -> Slider:
    limit = lab.limits.new_tokens_limit(lab.engine.config)
    return Slider(1, limit, value=min(value, limit), step=1,
                  label="max new tokens", info=f"at most {limit} on this app")
