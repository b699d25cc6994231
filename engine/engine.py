"""Engine: the public surface. Compile documents once, link them into any prompt, generate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import torch

from engine import runtime
from engine.chunking import chunk_text
from engine.config import EngineConfig
from engine.generate import RunResult, StreamPiece, generate
from engine.inspection import InspectResult, attention_scores
from engine.link import (
    LinkAlgorithm,
    LinkInput,
    LinkResult,
    PrefixCache,
    compile_chunk,
    make_algorithm,
)
from engine.prompt import build_layout, chunk_token_ids
from engine.request import Request
from engine.runtime import Model
from engine.store import (
    ChunkFormat,
    ChunkKV,
    ChunkStore,
    Prefetcher,
    RedisTier,
    clean_title,
    title_of,
)


def load_model(config: EngineConfig) -> Model:
    """The configured model on the configured device and dtype (an Engine loads its own; load
    one to share it between engines: `Engine(config, model=model)`)."""
    return runtime.load_model(config.model, config.torch_device, config.torch_dtype,
                              config.cache_dir)


def chunk_format(model: Model) -> ChunkFormat:
    """What every chunk this model compiles shares: its identity and KV layout."""
    s = model.spec
    return ChunkFormat(model.model_id, model.dtype, model.device, s.num_layers, s.num_kv_heads,
                       s.head_dim, s.vocab_size)


class Engine:
    """One model, its chunk store, and the link algorithms over them.

    Model calls are serialised by one lock, so several threads (the app's users, a benchmark)
    may share an engine; each request's KV is its own.
    """

    def __init__(self, config: EngineConfig | None = None, model: Model | None = None) -> None:
        self.config = config or EngineConfig()
        self.model = model or load_model(self.config)
        shared = RedisTier(self.config.store_url) if self.config.store_url else None
        self.store = ChunkStore(chunk_format(self.model), self.config.store_budget_bytes,
                                max_chunk_tokens=self.context_limit, shared=shared)
        self.prefetcher = (Prefetcher(self.store)
                           if shared is not None and self.config.store_prefetch else None)
        self.prefix_cache = PrefixCache(self.config.prefix_cache_entries,
                                        self.config.prefix_cache_budget_bytes)
        self._lock = threading.Lock()  # not RLock: a stream may resume on another thread

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def context_limit(self) -> int:
        """Tokens a linked prompt plus its generation may take."""
        return min(self.config.max_context_tokens, self.model.spec.max_positions)

    def compile(self, text: str, title: str = "") -> str:
        """Compile one chunk of text (its separator appended) -> its content key."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("cannot compile an empty chunk: the text is empty")
        ids = chunk_token_ids(self.tokenizer, text)
        return self._compile_ids(ids, clean_title(title) or title_of(text))

    def compile_document(self, text: str, title: str = "") -> list[str]:
        """Chunk a document under the configured token budget and compile every chunk."""
        chunks = chunk_text(text, self.tokenizer, self.config.chunk_tokens)
        if not chunks:
            raise ValueError("the document is empty")
        if len(chunks) == 1:
            return [self.compile(chunks[0], title)]
        return [self.compile(c, f"{title} #{i + 1}" if title else "") for i, c in enumerate(chunks)]

    def _compile_ids(self, token_ids: list[int] | tuple[int, ...], title: str) -> str:
        if len(token_ids) > self.context_limit:
            raise ValueError(f"chunk has {len(token_ids)} tokens, over the limit of "
                             f"{self.context_limit}")
        with self._lock:
            return self.store.get_or_compile(token_ids, title, partial(compile_chunk, self.model))

    def request(self, **kwargs: Any) -> Request:
        """A checked Request from loose arguments (those of `run`), with this engine's limits."""
        return Request.make(self.config, **kwargs)

    def run(self, prefix: str = "", chunks: list[str] = (), question: str = "",
            algorithm: str = "legolink", **kwargs: Any) -> RunResult:
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
        request = self.request(prefix=prefix, chunks=chunks, question=question,
                               algorithm=algorithm, recompute_k=recompute_k,
                               recompute_ratio=recompute_ratio, max_new_tokens=max_new_tokens,
                               temperature=temperature, seed=seed)
        return self.stream_request(request)

    def stream_request(self, request: Request) -> Iterator[StreamPiece]:
        """Stream the answer to a checked Request (see `stream`)."""
        arrival_ms = time.perf_counter() * 1e3
        with self._lock:
            algo, link = self._link(request)
            for piece in generate(self.model, link, arrival_ms, request.max_new_tokens,
                                  request.temperature, request.seed):
                if piece.result is not None:
                    algo.after_decode(link)
                yield piece

    def run_request(self, request: Request) -> RunResult:
        """The RunResult of a checked Request."""
        for piece in self.stream_request(request):
            if piece.result is not None:
                return piece.result
        raise RuntimeError("generation ended without a result")

    def inspect(self, prefix: str = "", chunks: list[str] = (), question: str = "",
                algorithm: str = "legolink", recompute_k: int | None = None,
                recompute_ratio: float | None = None, max_new_tokens: int = 8) -> InspectResult:
        """Run a request and return the attention of its last prompt token and generated tokens
        over the whole context, per layer and head."""
        return self.inspect_request(self.request(
            prefix=prefix, chunks=chunks, question=question, algorithm=algorithm,
            recompute_k=recompute_k, recompute_ratio=recompute_ratio,
            max_new_tokens=max_new_tokens))

    def inspect_request(self, request: Request) -> InspectResult:
        """`inspect` for a checked Request (greedy decoding)."""
        arrival_ms = time.perf_counter() * 1e3
        with self._lock:
            algo, link = self._link(request)
            result = None
            for piece in generate(self.model, link, arrival_ms, request.max_new_tokens):
                result = piece.result or result
            algo.after_decode(link)
            return attention_scores(self.model, link, result)

    def _link(self, request: Request) -> tuple[LinkAlgorithm, LinkResult]:
        """Fetch the chunks, lay out the prompt, check its size, link -> (algorithm, result)."""
        spec = request.algorithm
        algo = make_algorithm(spec.name, spec.label, spec.value, self.prefix_cache)
        stored = self._fetch(request.chunks)
        layout = build_layout(self.tokenizer, request.prefix,
                              [(c.key, c.title, list(c.token_ids)) for c in stored],
                              request.question)
        limit = self.context_limit
        if layout.num_tokens + request.max_new_tokens > limit:
            raise ValueError(f"the prompt has {layout.num_tokens} tokens; with "
                             f"{request.max_new_tokens} new tokens it exceeds the context "
                             f"limit of {limit} tokens")
        for key in request.chunks:  # the request is valid: now it counts as use
            if key in self.store:  # (a recompile above may have evicted an earlier chunk)
                self.store.get(key, hit=algo.reads_chunks)
        with torch.inference_mode():
            job = LinkInput(self.model, layout, stored, layout.num_tokens + request.max_new_tokens)
            return algo, algo.link(job)

    def _fetch(self, keys: tuple[str, ...]) -> list[ChunkKV]:
        """A request's chunks, each stored here, recompiled from the token ids it had when
        evicted, or read from the shared store. Unknown keys fail here, with a message, before
        anything is computed."""
        return self.store.fetch_many(keys, partial(compile_chunk, self.model))
