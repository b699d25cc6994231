"""How a request becomes one token sequence: uncached prefix, cached chunks, uncached suffix.

For instruct models the chat template is split around the user message: its head (system
turn holding the prefix, the user turn's opener) is the uncached prefix segment; the chunks
follow as cached segments; the question and the template's tail (end of turn, assistant
opener) are the uncached suffix segment. Base models without a template get raw text:
prefix, chunks, question. Every algorithm, full recompute included, runs on exactly the
concatenation of the segments' own token ids, never on a re-tokenisation of the joined text.
User text (prefix, chunks, question) never becomes control tokens: only the template's own
text is tokenized with them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from engine.link import Layout, Segment

CHUNK_SEPARATOR = "\n\n"  # compiled at the end of each chunk, so linking inserts no tokens


def encode_user_text(tokenizer, text: str, add_special_tokens: bool = False) -> list[int]:
    """Token ids of text a user gave: a chat control token written in it ("<|im_end|>") stays
    text, so no user can rewrite the prompt's structure. The tokenizer's own special tokens
    (a BOS where it adds one) are added only when asked."""
    return tokenizer(text, add_special_tokens=add_special_tokens,
                     split_special_tokens=True).input_ids


def chunk_token_ids(tokenizer, text: str) -> list[int]:
    """Token ids a chunk is compiled from: its text plus the separator, with the tokenizer's
    own special tokens (a BOS where the tokenizer adds one, as EPIC keeps it per chunk)."""
    return encode_user_text(tokenizer, text.strip() + CHUNK_SEPARATOR, add_special_tokens=True)


def _template_pieces(tokenizer, prefix: str, question: str,
                     ) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """-> (pieces before the chunks, pieces after them), each (text, is_user_text).

    The template is rendered around fresh random slots, then split at them, so the template's
    own text (which holds its control tokens) and the user's text are told apart exactly,
    whatever the user writes (even a slot-like string)."""
    if not getattr(tokenizer, "chat_template", None):
        return [(prefix, True)] if prefix else [], [(question, True)]
    nonce = secrets.token_hex(8)
    prefix_slot, user_slot = f"\x00P{nonce}\x00", f"\x00U{nonce}\x00"
    messages = [{"role": "user", "content": user_slot}]
    if prefix:
        messages.insert(0, {"role": "system", "content": prefix_slot})
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    if text.count(user_slot) != 1 or text.count(prefix_slot) != int(bool(prefix)):
        raise ValueError("the model's chat template repeats or drops a message: unsupported")
    head, tail = text.split(user_slot)
    before = [(head, False)]
    if prefix:
        opener, closer = head.split(prefix_slot)
        before = [(opener, False), (prefix, True), (closer, False)]
    return [p for p in before if p[0]], [p for p in [(question, True), (tail, False)] if p[0]]


def template_parts(tokenizer, prefix: str, question: str) -> tuple[str, str]:
    """-> (head text before the chunks, tail text after them). Raw text without a template."""
    head, tail = _template_pieces(tokenizer, prefix, question)
    return "".join(t for t, _ in head), "".join(t for t, _ in tail)


def _encode(tokenizer, pieces: list[tuple[str, bool]]) -> list[int]:
    # Template text is tokenized with its control tokens, user text with none; pieces meet at
    # control tokens or newlines, where a joint tokenization would split them anyway.
    return [t for text, user in pieces for t in (
        encode_user_text(tokenizer, text) if user else
        tokenizer(text, add_special_tokens=False).input_ids)]


def build_layout(tokenizer, prefix: str, chunks: list[tuple[str, str, list[int]]],
                 question: str) -> Layout:
    """chunks: (key, title, token_ids) in prompt order -> the linked prompt's layout."""
    head, tail = _template_pieces(tokenizer, prefix, question)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    head_ids = _encode(tokenizer, head)
    if head_ids and not has_template:
        # A raw prefix starts the sequence: it gets the tokenizer's BOS where it adds one
        # (a template's head carries its own special tokens as text).
        head_ids = encode_user_text(tokenizer, prefix, add_special_tokens=True)
    tail_ids = _encode(tokenizer, tail)  # the suffix never starts a sequence: no BOS
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


class ContextLimitError(ValueError):
    """A prompt whose tokens plus its answer's are over the context limit."""


@dataclass(frozen=True)
class PromptPlan:
    """A request's prompt before any model work: its layout and the context-limit check."""

    layout: Layout
    max_new_tokens: int
    context_limit: int  # tokens the prompt plus its answer may take

    @property
    def num_tokens(self) -> int:
        return self.layout.num_tokens

    @property
    def fits(self) -> bool:
        return self.num_tokens + self.max_new_tokens <= self.context_limit

    def check(self) -> None:
        """A ContextLimitError, with the numbers, unless the prompt and its answer fit."""
        if not self.fits:
            raise ContextLimitError(
                f"the prompt has {self.num_tokens} tokens; with {self.max_new_tokens} new "
                f"tokens it exceeds the context limit of {self.context_limit} tokens")
