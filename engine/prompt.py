"""How a request becomes one token sequence: uncached prefix, cached chunks, uncached suffix.

For instruct models the chat template is split around the user message: its head (system
turn holding the prefix, the user turn's opener) is the uncached prefix segment; the chunks
follow as cached segments; the question and the template's tail (end of turn, assistant
opener) are the uncached suffix segment. Base models without a template get raw text:
prefix, chunks, question. Every algorithm, full recompute included, runs on exactly the
concatenation of the segments' own token ids, never on a re-tokenisation of the joined text.
"""

from __future__ import annotations

from dataclasses import dataclass

CHUNK_SEPARATOR = "\n\n"  # compiled at the end of each chunk, so linking inserts no tokens
_SLOT = "\x00EPIC-USER-SLOT\x00"


@dataclass(frozen=True)
class Segment:
    """A run of positions [start, start + len(token_ids)) in a linked prompt."""

    kind: str  # "prefix" | "chunk" | "suffix"
    start: int
    token_ids: tuple[int, ...]
    key: str | None = None  # the chunk's store key, for kind == "chunk"
    title: str = ""

    @property
    def end(self) -> int:
        return self.start + len(self.token_ids)


@dataclass(frozen=True)
class Layout:
    """One linked prompt: its token sequence and the segments that make it up."""

    token_ids: tuple[int, ...]
    segments: tuple[Segment, ...]

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def chunks(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.kind == "chunk")


def chunk_token_ids(tokenizer, text: str) -> list[int]:
    """Token ids a chunk is compiled from: its text plus the separator, with the tokenizer's
    own special tokens (a BOS where the tokenizer adds one, as EPIC keeps it per chunk)."""
    return tokenizer(text.strip() + CHUNK_SEPARATOR).input_ids


def template_parts(tokenizer, prefix: str, question: str) -> tuple[str, str]:
    """-> (head text before the chunks, tail text after them). Raw text without a template."""
    if not getattr(tokenizer, "chat_template", None):
        return prefix, question
    messages = [{"role": "user", "content": _SLOT}]
    if prefix:
        messages.insert(0, {"role": "system", "content": prefix})
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    head, tail = text.split(_SLOT)
    return head, question + tail


def build_layout(tokenizer, prefix: str, chunks: list[tuple[str, str, list[int]]],
                 question: str) -> Layout:
    """chunks: (key, title, token_ids) in prompt order -> the linked prompt's layout."""
    head, tail = template_parts(tokenizer, prefix, question)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    # A template head carries its own special tokens as text; raw prefixes get the tokenizer's
    # (BOS where it adds one). The suffix never starts a sequence, so it gets none.
    head_ids = tokenizer(head, add_special_tokens=not has_template).input_ids if head else []
    tail_ids = tokenizer(tail, add_special_tokens=False).input_ids
    segments, pos = [], 0
    if head_ids:
        segments.append(Segment("prefix", 0, tuple(head_ids)))
        pos = len(head_ids)
    for key, title, ids in chunks:
        segments.append(Segment("chunk", pos, tuple(ids), key, title))
        pos += len(ids)
    segments.append(Segment("suffix", pos, tuple(tail_ids)))
    token_ids = tuple(t for s in segments for t in s.token_ids)
    return Layout(token_ids, tuple(segments))
