"""Honest estimates: the compile work a call will really do, counted before it runs.

A compile costs only the chunks the store does not hold yet under the visitor's own salt: a
re-upload of files the visitor compiled already compiles nothing and is estimated and announced
so. Chunked and keyed exactly as `Engine.compile_document` does (the same chunking, the same
`chunk_key` of token ids and salt), with no model work. "Held" is asked with the visitor's key
only: another visitor's copy of the same text has another key and costs this one the full
compile, so an estimate never tells whether someone else compiled a text (a side channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.cost import Work, compile_work
from engine import Engine, chunk_token_ids
from engine.chunking import chunk_text  # the chunking compile_document uses

__all__ = ["CompilePlan", "compile_plan"]


@dataclass(frozen=True)
class CompilePlan:
    """What a compile of some documents will do: its chunks, those to compile (not held
    under the visitor's salt, each counted once), their tokens and their model work."""

    num_chunks: int
    num_new_chunks: int
    num_new_tokens: int  # tokens of the chunks to compile: the model's work
    work: Work  # compile_work of each chunk to compile

    def describe(self) -> str:
        """What the call will do, for the announcement of a long call and a refusal."""
        held = self.num_chunks - self.num_new_chunks
        if not self.num_new_chunks:
            return f"nothing to compile: all {held} chunk(s) are already in your library"
        text = f"compiling {self.num_new_tokens:,} tokens in {self.num_new_chunks} new chunk(s)"
        return text + (f"; {held} already compiled cost nothing" if held else "")


def compile_plan(engine: Engine, texts: Sequence[str], salt: str) -> CompilePlan:
    """The plan of compiling these documents' texts under `salt` into `engine`'s store."""
    tokenizer, store = engine.tokenizer, engine.store
    layers = engine.model.spec.num_layers
    num_chunks, new_tokens, work, seen = 0, 0, Work(), set()
    for text in texts:
        for chunk in chunk_text(text, tokenizer, engine.config.chunk_tokens):
            ids = chunk_token_ids(tokenizer, chunk)
            key = store.key_for(ids, salt=salt)
            num_chunks += 1
            if key not in store and key not in seen:  # a repeat within the call: once
                seen.add(key)
                new_tokens += len(ids)
                work += compile_work(len(ids), layers)
    return CompilePlan(num_chunks, len(seen), new_tokens, work)
