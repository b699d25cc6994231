"""User-derived text made safe to show: Markdown and HTML escaping, sizes, answer diffs.

Every string that came from a visitor (a title, a file name, a question, a model's answer) is
passed through `md` before it goes into Markdown and through `html_text` before it goes into
HTML, so that `<img src=…>`, `![](…)`, links and bare URLs show as text and fetch nothing.
Plotly labels use visualize.style.plot_text.
"""

from __future__ import annotations

import html
import re

# Markdown punctuation a renderer may act on (marked with GFM, as Gradio uses).
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
# What GFM turns into links without any markup: URLs with a scheme, www., e-mail addresses.
_AUTOLINK = {":": "&#58;", "@": "&#64;"}


def md(text: object) -> str:
    """`text` as literal Markdown: HTML escaped, Markdown punctuation backslash-escaped, no
    autolinks, no LaTeX, one line."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    escaped = html.escape(escaped, quote=True).replace("$", "&#36;")
    for char, entity in _AUTOLINK.items():
        escaped = escaped.replace(char, entity)
    return escaped


def html_text(text: object) -> str:
    """`text` escaped for HTML element content or a quoted attribute."""
    return html.escape(str(text), quote=True)


def size_text(num_bytes: float) -> str:
    """Bytes in the unit a person reads best."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{int(num_bytes)} B"


def answer_diff_html(rows: list[tuple[str, list[str], list[bool]]]) -> str:
    """Each answer token by token, tokens that differ from full recompute's at the same index
    marked: rows are (algorithm label, token texts, differs per token)."""
    if not rows:
        return ""
    lines = []
    for label, tokens, differs in rows:
        spans = "".join(
            f"<span class='tok{' diff' if d else ''}'>{html_text(t)}</span>"
            for t, d in zip(tokens, differs, strict=True))
        lines.append(f"<div class='diff-row'><span class='diff-label'>{html_text(label)}"
                     f"</span><span class='diff-tokens'>{spans or '∅'}</span></div>")
    return ("<div class='answer-diff'><p class='hint'>Answers token by token; "
            "<span class='tok diff'>marked</span> tokens differ from full recompute's "
            "token at the same place.</p>" + "".join(lines) + "</div>")


CHAR_PX, CELL_PADDING_PX, MIN_COLUMN_PX = 9, 28, 64


def column_widths(*tables: list[str], wide: dict[str, int] | None = None) -> list[str]:
    """Fixed Dataframe column widths in px for tables of these headers (one width per column
    index, the widest any of them needs): never narrower than a header's longest word (or the
    width given in `wide` for columns of long text). On a narrow screen the table scrolls
    sideways rather than breaking headers and numbers over lines."""
    wide = wide or {}
    widths = [[max(MIN_COLUMN_PX, wide.get(h, 0),
                   CHAR_PX * max(map(len, h.split())) + CELL_PADDING_PX) for h in headers]
              for headers in tables]
    return [f"{max(column)}px" for column in zip(*widths, strict=False)]
