"""Documents -> chunks: a token budget per chunk, ending at a sentence or paragraph boundary.

EPIC's rule: a chunk takes `chunk_tokens` tokens, then extends to the nearest boundary after
them — a sentence end within 1.5x the budget, a line end within 2x — and is cut at the budget
where neither comes. The text is tokenized once with character offsets and cut only between
tokens, so a chunk never splits a token and joining the chunks gives back the input.
"""

from __future__ import annotations

import math
from typing import Any

SENTENCE_ENDS = ".!?"
# Closing quotes and brackets may follow a sentence's final mark: `He left.")` still ends it.
CLOSERS = "\"')]}\u2019\u201d"
SENTENCE_REACH = 1.5  # a sentence end counts up to this many budgets from the chunk start
LINE_REACH = 2.0  # a line end counts up to this many budgets


def chunk_text(text: str, tokenizer: Any, chunk_tokens: int = 512) -> list[str]:
    """Split `text` into chunk texts of about `chunk_tokens` tokens each.

    Rules, in order, for each chunk after the previous one:
    - the rest of the text fits the budget: it is the last chunk;
    - else the chunk ends at the first boundary after `chunk_tokens` tokens: a sentence end
      ('.', '!' or '?', then whitespace) up to 1.5x the budget, or a line end (a newline,
      the end of the text) up to 2x;
    - else it ends after exactly `chunk_tokens` tokens (earlier, where that cut would fall
      inside one character that spans several byte tokens);
    - whitespace-only tokens right after the cut stay with this chunk (within 2x), so the
      next chunk does not open with a blank line.

    Whitespace that would form a chunk of its own is dropped: blank space at the start longer
    than the budget, or a run that does not fit the chunk before it within 2x the budget.
    Otherwise `"".join(chunks) == text`. Token counts are those of `text` tokenized as a
    whole, without special tokens. `tokenizer` must be a Hugging Face fast tokenizer (one
    that returns offset mappings).
    """
    if chunk_tokens <= 0:
        raise ValueError(f"chunk_tokens must be > 0, got {chunk_tokens}")
    if not text.strip():
        return []
    return _Cutter(text, _token_offsets(text, tokenizer), chunk_tokens).chunks()


def _token_offsets(text: str, tokenizer: Any) -> list[tuple[int, int]]:
    try:
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True,
                             verbose=False)  # no warning for texts longer than the model's window
    except NotImplementedError as err:  # slow (Python) tokenizers have no offset mapping
        raise TypeError("chunk_text needs a fast tokenizer (one with offset mappings)") from err
    return [(int(start), int(end)) for start, end in encoding["offset_mapping"]]


class _Cutter:
    """One pass over the token offsets; a cut `c` separates tokens [.., c) from [c, ..)."""

    def __init__(self, text: str, offsets: list[tuple[int, int]], budget: int) -> None:
        self.text, self.offsets, self.budget, self.n = text, offsets, budget, len(offsets)

    def chunks(self) -> list[str]:
        pieces: list[str] = []
        start_token, start_char = 0, 0
        while start_token < self.n:
            cut = self._choose_cut(start_token, start_char)
            end_char = self._char_at(cut)
            piece = self.text[start_char:end_char]
            if piece.strip():
                pieces.append(piece)
            start_token, start_char = cut, end_char
        return pieces

    def _char_at(self, cut: int) -> int:
        # Text between two tokens' offsets (untokenized whitespace) goes to the later chunk,
        # as byte-level BPE attaches a space to the token after it; the tail goes to the last.
        return len(self.text) if cut == self.n else self.offsets[cut - 1][1]

    def _can_cut(self, cut: int, start_char: int) -> bool:
        if cut == self.n:
            return True
        # Byte-level tokenizers split one multi-byte character into several tokens that share
        # its offsets; cutting between them would split the character.
        end = self.offsets[cut - 1][1]
        return start_char < end <= self.offsets[cut][0]

    def _choose_cut(self, start: int, start_char: int) -> int:
        budget = self.budget
        if self.n - start <= budget:
            return self.n
        sentence_limit = start + math.floor(SENTENCE_REACH * budget)
        line_limit = min(start + math.floor(LINE_REACH * budget), self.n)
        for cut in range(start + budget, line_limit + 1):
            if not self._can_cut(cut, start_char):
                continue
            if self._is_line_end(cut) or (cut <= sentence_limit and self._is_sentence_end(cut)):
                return self._absorb_whitespace(cut, start, start_char)
        return self._absorb_whitespace(self._hard_cut(start, start_char), start, start_char)

    def _hard_cut(self, start: int, start_char: int) -> int:
        for cut in range(start + self.budget, start, -1):
            if self._can_cut(cut, start_char):
                return cut
        # Only a budget smaller than one character's tokens gets here: take that character.
        return next(c for c in range(start + self.budget + 1, self.n + 1)
                    if self._can_cut(c, start_char))

    def _absorb_whitespace(self, cut: int, start: int, start_char: int) -> int:
        limit = start + math.floor(LINE_REACH * self.budget)
        while cut < self.n:
            following = next(c for c in range(cut + 1, self.n + 1)
                             if self._can_cut(c, start_char))
            gap = self.text[self._char_at(cut):self._char_at(following)]
            if following > limit or not gap.isspace():
                break
            cut = following
        return cut

    def _is_line_end(self, cut: int) -> bool:
        if cut == self.n:
            return True
        pos = self._char_at(cut)
        # Indentation after a newline still ends the line: "\n  " does.
        while pos > 0 and self.text[pos - 1] in " \t\r":
            pos -= 1
        return pos > 0 and self.text[pos - 1] == "\n"

    def _is_sentence_end(self, cut: int) -> bool:
        pos = self._char_at(cut)
        # The mark must be followed by whitespace: "3.14" and "e.g.x" do not end a sentence.
        if pos >= len(self.text) or not self.text[pos].isspace():
            return False
        while pos > 0 and self.text[pos - 1] in CLOSERS:
            pos -= 1
        return pos > 0 and self.text[pos - 1] in SENTENCE_ENDS
