"""Honest estimates: the compile work a call will really do, counted before it runs.

A compile costs only the chunks the store does not hold yet under the visitor's own salt: a
re-upload of files the visitor compiled already compiles nothing and is estimated and announced
so; a request's compile variants (LegoLink-0, APE) cost nothing where the visitor's own copies
are held (`held_variants`). Chunked and keyed exactly as the engine does (the same chunking,
the same `chunk_key` of token ids, variant and salt), with no model work. "Held" is asked with
the visitor's key only: another visitor's copy of the same text has another key and costs this
one the full compile, so an estimate never tells whether someone else compiled a text (a side
channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.cost import Work, compile_work
from engine import AlgorithmSpec, Engine, Layout, chunk_token_ids

__all__ = ["CompilePlan", "compile_plan", "held_variants"]


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
        for chunk in engine.document_chunks(text):
            ids = chunk_token_ids(tokenizer, chunk)
            key = store.key_for(ids, salt=salt)
            num_chunks += 1
            if key not in store and key not in seen:  # a repeat within the call: once
                seen.add(key)
                new_tokens += len(ids)
                work += compile_work(len(ids), layers)
    return CompilePlan(num_chunks, len(seen), new_tokens, work)


def held_variants(engine: Engine, layout: Layout, spec: AlgorithmSpec, salt: str) -> frozenset[int]:
    """The starts of the prompt's chunks whose copy as `spec`'s compile variant the store holds
    under `salt`, for the visitor's own chunks only (keyed under its salt): a shared chunk's
    copy (an example's, salt "") is never counted held, whoever made it."""
    variant = spec.algorithm.compile_variant.name
    if not variant or not salt:
        return frozenset()
    store, held = engine.store, set()
    for seg in layout.chunks:
        ids = tuple(seg.token_ids)
        if seg.start and seg.key == store.key_for(ids, salt=salt) \
                and store.key_for(ids, variant, salt) in store:
            held.add(seg.start)
    return frozenset(held)
