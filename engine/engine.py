"""Engine: the public surface. Compile documents once, link them into any prompt, generate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import torch

from engine.attention import InspectResult, attention_scores
from engine.chunking import chunk_text
from engine.config import EngineConfig
from engine.generate import RunResult, StreamPiece, generate
from engine.link import ALGORITHMS, LinkResult, PrefixCache, make_algorithm
from engine.loader import load_model
from engine.model import Model
from engine.prompt import build_layout, chunk_token_ids
from engine.store import ChunkStore

MAX_RECOMPUTE_K = 4096


class Engine:
    """One model, its chunk store, and the link algorithms over them.

    Model calls are serialised by one lock, so several threads (the app's users, a benchmark)
    may share an engine; each request's KV is its own.
    """

    def __init__(self, config: EngineConfig | None = None, model: Model | None = None) -> None:
        self.config = config or EngineConfig()
        self.model = model or load_model(self.config)
        self.store = ChunkStore(self.model, self.config)
        self.prefix_cache = PrefixCache(self.config.prefix_cache_entries)
        self._lock = threading.Lock()  # not RLock: a stream may resume on another thread

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def compile(self, text: str, title: str = "") -> str:
        """Compile one chunk of text (its separator appended) -> its content key."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("cannot compile an empty chunk: the text is empty")
        ids = chunk_token_ids(self.tokenizer, text)
        with self._lock:
            return self.store.compile(ids, title or _title(text))

    def compile_document(self, text: str, title: str = "") -> list[str]:
        """Chunk a document under the configured token budget and compile every chunk."""
        chunks = chunk_text(text, self.tokenizer, self.config.chunk_tokens)
        if not chunks:
            raise ValueError("the document is empty")
        if len(chunks) == 1:
            return [self.compile(chunks[0], title)]
        return [self.compile(c, f"{title} #{i + 1}" if title else "") for i, c in enumerate(chunks)]

    def run(self, prefix: str = "", chunks: list[str] = (), question: str = "",
            algorithm: str = "legolink", **kwargs) -> RunResult:
        """Link the chunks behind the prefix, ask the question, generate: see `stream`."""
        for piece in self.stream(prefix, chunks, question, algorithm, **kwargs):
            if piece.result is not None:
                return piece.result
        raise RuntimeError("generation ended without a result")

    def stream(self, prefix: str = "", chunks: list[str] = (), question: str = "",
               algorithm: str = "legolink", recompute_k: int | None = None,
               recompute_ratio: float | None = None, max_new_tokens: int = 32,
               temperature: float = 0.0, seed: int | None = None) -> Iterator[StreamPiece]:
        """Stream the answer; the last piece carries the RunResult (text, TTFT, mask, ...)."""
        arrival_ms = time.perf_counter() * 1e3
        with self._lock:
            link = self._link(prefix, chunks, question, algorithm, recompute_k, recompute_ratio,
                              max_new_tokens)
            yield from generate(self.model, link, arrival_ms, max_new_tokens, temperature, seed)

    def inspect(self, prefix: str = "", chunks: list[str] = (), question: str = "",
                algorithm: str = "legolink", recompute_k: int | None = None,
                recompute_ratio: float | None = None, max_new_tokens: int = 8) -> InspectResult:
        """Run a request and return the attention of its last prompt token and generated tokens
        over the whole context, per layer and head."""
        arrival_ms = time.perf_counter() * 1e3
        with self._lock:
            link = self._link(prefix, chunks, question, algorithm, recompute_k, recompute_ratio,
                              max_new_tokens)
            result = None
            for piece in generate(self.model, link, arrival_ms, max_new_tokens):
                result = piece.result or result
            return attention_scores(self.model, link, result)

    def _link(self, prefix: str, chunk_keys: list[str], question: str, algorithm: str,
              recompute_k: int | None, recompute_ratio: float | None,
              max_new_tokens: int) -> LinkResult:
        k = self.config.recompute_k if recompute_k is None else recompute_k
        ratio = self.config.recompute_ratio if recompute_ratio is None else recompute_ratio
        _check_request(prefix, chunk_keys, question, algorithm, k, ratio, max_new_tokens,
                       self.config.max_new_tokens)
        algo = make_algorithm(algorithm, k, ratio, self.prefix_cache)
        stored = [self._fetch(key) for key in chunk_keys]
        layout = build_layout(self.tokenizer, prefix,
                              [(c.key, c.title, list(c.token_ids)) for c in stored], question)
        limit = min(self.config.max_context_tokens, self.model.spec.max_positions)
        if layout.num_tokens + max_new_tokens > limit:
            raise ValueError(f"the prompt has {layout.num_tokens} tokens; with {max_new_tokens} "
                             f"new tokens it exceeds the context limit of {limit} tokens")
        for key in chunk_keys:  # the request is valid: now it counts as use
            if key in self.store:  # (a recompile above may have evicted an earlier chunk)
                self.store.get(key, hit=algo.reads_chunks)
        with torch.inference_mode():
            return algo.link(self.model, layout, stored, layout.num_tokens + max_new_tokens)


    def _fetch(self, key: str):
        """A chunk by key; one evicted earlier is recompiled from its remembered token ids.
        Unknown keys fail here, with a message, before anything is computed."""
        try:
            return self.store.peek(key)
        except KeyError:
            evicted = self.store.evicted_token_ids(key)
            if evicted is None:
                raise
            title, token_ids = evicted
            self.store.compile(list(token_ids), title)
            return self.store.peek(key)


def _check_request(prefix, chunk_keys, question, algorithm, k, ratio, max_new_tokens, max_allowed):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}: choose from {', '.join(ALGORITHMS)}")
    if not isinstance(prefix, str) or not isinstance(question, str):
        raise ValueError("prefix and question must be text")
    if not question.strip():
        raise ValueError("the question is empty: ask something")
    if isinstance(chunk_keys, str) or not all(isinstance(c, str) for c in chunk_keys):
        raise ValueError("chunks must be a list of chunk keys")
    if not chunk_keys:
        raise ValueError("no chunks chosen: pick at least one compiled chunk")
    if not (isinstance(k, int) and 0 <= k <= MAX_RECOMPUTE_K):
        raise ValueError(f"recompute_k must be an integer in [0, {MAX_RECOMPUTE_K}], got {k!r}")
    if not (isinstance(ratio, (int, float)) and 0.0 <= ratio <= 1.0):
        raise ValueError(f"recompute_ratio must be in [0, 1], got {ratio!r}")
    if not (isinstance(max_new_tokens, int) and 1 <= max_new_tokens <= max_allowed):
        raise ValueError(f"max_new_tokens must be in [1, {max_allowed}], got {max_new_tokens!r}")


def _title(text: str, num_words: int = 8) -> str:
    words = text.split()
    return " ".join(words[:num_words]) + (" ..." if len(words) > num_words else "")
