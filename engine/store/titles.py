"""Chunk titles: user-given text normalised the same way on every path (compile, files, the
shared tier), and how the chunks of one document are named."""

from __future__ import annotations

import re
from pathlib import Path

MAX_TITLE_CHARS = 120
# C0/C1 controls, zero-width characters, bidi embeddings/overrides/isolates, the BOM.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_title(text: str) -> str:
    """`text` fit to show as a title: no control or bidi characters, one line, at most 120
    characters (a file's extension stays visible when it is cut)."""
    title = " ".join(_INVISIBLE.sub("", text).split())
    if len(title) > MAX_TITLE_CHARS:
        suffix = Path(title).suffix
        suffix = suffix if len(suffix) <= 10 else ""
        title = title[: MAX_TITLE_CHARS - 1 - len(suffix)] + "…" + suffix
    return title


def title_of(text: str, num_words: int = 8) -> str:
    """A title for a text that has none: its first words."""
    words = text.split()
    return clean_title(" ".join(words[:num_words]) + (" ..." if len(words) > num_words else ""))


def chunk_titles(title: str, num_chunks: int) -> list[str]:
    """The titles of a document's chunks: its own for one chunk, `{title} #{n}` for several
    ("" where the document has no title: each chunk is then named by its first words)."""
    if num_chunks == 1:
        return [title]
    return [f"{title} #{n}" if title else "" for n in range(1, num_chunks + 1)]
