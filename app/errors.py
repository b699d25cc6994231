"""Turn the engine's refusals into messages the user sees, never a stack trace."""

from __future__ import annotations

import functools
import html
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

F = TypeVar("F", bound=Callable[..., Any])

# DocumentError is a ValueError; KeyError is how the store names unknown or evicted chunks.
USER_ERRORS = (ValueError, KeyError)


# Markdown that would fetch or link (images, inline links, autolinks), as HTML entities: the
# message box renders them as the characters they stand for, a Markdown renderer as text.
_INERT = (("![", "&#33;["), ("](", "]&#40;"), ("://", "&#58;//"), ("www.", "www&#46;"),
          ("@", "&#64;"))


def message(err: BaseException) -> str:
    """The text of an error: a KeyError's message without the quotes str() adds, HTML escaped
    (the browser shows messages as HTML, and they may quote a visitor's input), with no
    Markdown image, link or autolink left for an API client that renders it."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = html.escape(text, quote=False)
    for markup, entity in _INERT:
        text = text.replace(markup, entity)
    return text


def user_errors(fn: F) -> F:
    """Re-raise the engine's ValueError/KeyError from `fn` (a function or a generator) as
    `gr.Error`, which Gradio shows as a message box and the API returns as the error text."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except USER_ERRORS as err:
                raise gr.Error(message(err), print_exception=False) from err
        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def function(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as err:
            raise gr.Error(message(err), print_exception=False) from err
    return function  # type: ignore[return-value]
