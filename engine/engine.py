"""Engine: the one way in. Compile documents once, plan and link them into any prompt, generate."""

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
    DEFAULT_COMPILE,
    FloorTiming,
    Layout,
    LinkAlgorithm,
    LinkContext,
    LinkInput,
    LinkResult,
    PrefixCache,
    floor_pass,
)
from engine.prompt import PromptPlan, build_layout, chunk_token_ids
from engine.request import Request
from engine.runtime import Model
from engine.store import (
    ChunkFormat,
    ChunkKV,
    ChunkStore,
    Prefetcher,
    chunk_titles,
    clean_title,
    open_tier,
    title_of,
)


def load_model(config: EngineConfig) -> Model:
    """The configured model on the configured device and dtype (an Engine loads its own; load
    one to share it between engines: `Engine(config, model=model)`)."""
    return runtime.load_model(config.model, config.torch_device, config.torch_dtype,
                              config.cache_dir)


class Engine:
    """One model, its chunk store, and the link algorithms over them.

    Model calls are serialised by one lock, so several threads (the app's users, a benchmark)
    may share an engine; each request's KV is its own.
    """

    def __init__(self, config: EngineConfig | None = None, model: Model | None = None) -> None:
        self.config = config or EngineConfig()
        self.model = model or load_model(self.config)
        s = self.model.spec
        fmt = ChunkFormat(self.model.model_id, self.model.dtype, self.model.device,
                          s.num_layers, s.num_kv_heads, s.head_dim, s.vocab_size)
        shared = open_tier(self.config.store_url) if self.config.store_url else None
        self.store = ChunkStore(fmt, self.config.store_budget_bytes,
                                max_chunk_tokens=self.context_limit, shared=shared)
        self.prefetcher = (Prefetcher(self.store)
                           if shared is not None and self.config.store_prefetch else None)
        self.prefix_cache = PrefixCache(self.config.prefix_cache_entries,
                                        self.config.prefix_cache_budget_bytes)
        self._context = LinkContext(self.prefix_cache)
        self._lock = threading.Lock()  # not RLock: a stream may resume on another thread

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def context_limit(self) -> int:
        """Tokens a linked prompt plus its generation may take."""
        return min(self.config.max_context_tokens, self.model.spec.max_positions)

    def compile(self, text: str, title: str = "", salt: str = "") -> str:
        """Compile one chunk of text (its separator appended) -> its content key. A `salt`
        (one per owner) keys the text apart from the same text under another salt."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("cannot compile an empty chunk: the text is empty")
        ids = chunk_token_ids(self.tokenizer, text)
        with self._lock:
            return self.store.get_or_compile(ids, clean_title(title) or title_of(text),
                                             partial(DEFAULT_COMPILE.compile, self.model),
                                             salt=salt)

    def document_chunks(self, text: str) -> list[str]:
        """A document cut into the chunks `compile_document` compiles (the configured token
        budget), without model work: estimates count them before anything runs."""
        return chunk_text(text, self.tokenizer, self.config.chunk_tokens)

    def compile_document(self, text: str, title: str = "", salt: str = "") -> list[str]:
        """Chunk a document under the configured token budget and compile every chunk."""
        chunks = self.document_chunks(text)
        if not chunks:
            raise ValueError("the document is empty")
        return [self.compile(chunk, name, salt)
                for chunk, name in zip(chunks, chunk_titles(title, len(chunks)), strict=True)]

    def request(self, **kwargs: Any) -> Request:
        """A checked Request from loose arguments (those of `run`), with this engine's limits."""
        return Request.make(self.config, **kwargs)

    def plan(self, request: Request) -> PromptPlan:
        """The request's prompt, laid out from its chunks' token ids (held here, or remembered
        since their eviction) without any model work: its tokens and the context check."""
        chunks = [(key, *self.store.tokens(key)) for key in request.chunks]
        return self._plan(request.prefix, chunks, request.question, request.max_new_tokens)

    def plan_texts(self, prefix: str, texts: list[str], question: str,
                   max_new_tokens: int) -> PromptPlan:
        """The plan of a prompt over chunk texts not compiled yet (tokenized as compile does)."""
        chunks = [("", "", chunk_token_ids(self.tokenizer, text)) for text in texts]
        return self._plan(prefix, chunks, question, max_new_tokens)

    def _plan(self, prefix: str, chunks: list[tuple[str, str, tuple[int, ...] | list[int]]],
              question: str, max_new_tokens: int) -> PromptPlan:
        """chunks: (key, title, token ids) in prompt order."""
        layout = build_layout(self.tokenizer, prefix,
                              [(key, title, list(ids)) for key, title, ids in chunks], question)
        return PromptPlan(layout, max_new_tokens, self.context_limit)

    def run(self, prefix: str = "", chunks: list[str] = (), question: str = "",
            algorithm: Any = "legolink", **kwargs: Any) -> RunResult:
        """Link the chunks behind the prefix, ask the question, generate: see `stream`."""
        return self.run_request(self.request(prefix=prefix, chunks=chunks, question=question,
                                             algorithm=algorithm, **kwargs))

    def stream(self, prefix: str = "", chunks: list[str] = (), question: str = "",
               algorithm: Any = "legolink", **kwargs: Any) -> Iterator[StreamPiece]:
        """Stream the answer; the last piece carries the RunResult (text, TTFT, mask, ...).

        `algorithm`: a name, a label ("legolink-16") or an AlgorithmSpec. Keywords:
        max_new_tokens (32), temperature (0: greedy), seed, cache_salt (prefix_cache reuses only
        earlier requests of the same salt, as vLLM's), and the algorithms' parameters
        (recompute_k=, recompute_ratio=, ...; None or absent: the declared default)."""
        return self.stream_request(self.request(prefix=prefix, chunks=chunks, question=question,
                                                algorithm=algorithm, **kwargs))

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
                algorithm: Any = "legolink", max_new_tokens: int = 8,
                **parameters: Any) -> InspectResult:
        """Run a request and return the attention of its last prompt token and generated tokens
        over the whole context, per layer and head."""
        return self.inspect_request(self.request(
            prefix=prefix, chunks=chunks, question=question, algorithm=algorithm,
            max_new_tokens=max_new_tokens, **parameters))

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

    def floor(self, request: Request) -> FloorTiming:
        """The floor under any link for this request's prompt (its chunks held here): the time
        to compute only its uncached positions over a buffer already holding the chunks."""
        with self._lock:
            stored = [self.store.peek(key) for key in request.chunks]
            plan = self._plan(request.prefix, [(c.key, c.title, c.token_ids) for c in stored],
                              request.question, request.max_new_tokens)
            return floor_pass(LinkInput(self.model, plan.layout, stored,
                                        plan.num_tokens + request.max_new_tokens))

    def compile_variants(self, request: Request) -> list[str]:
        """The keys of the request's chunks as its algorithm's compile variant links them,
        each compiled now if missing (a chunk opening the prompt keeps its plain compile):
        a benchmark calls this before timing, a request does it itself when linking."""
        with self._lock:
            stored = self._fetch(request.chunks)
            plan = self._plan(request.prefix, [(c.key, c.title, c.token_ids) for c in stored],
                              request.question, request.max_new_tokens)
            return [c.key for c in self._variants(request, plan.layout, stored)]

    def _variants(self, request: Request, layout: Layout, stored: list[ChunkKV],
                  ) -> list[ChunkKV]:
        """The chunks compiled as the request's algorithm's compile variant, in prompt order;
        those missing are compiled here (counted like any compile)."""
        variant = request.algorithm.algorithm.compile_variant
        if variant == DEFAULT_COMPILE:
            return stored
        compile_fn = partial(variant.compile, self.model)
        linked = []
        for seg, chunk in zip(layout.chunks, stored, strict=True):
            if seg.start == 0:  # opens the prompt: exact as compiled plainly
                linked.append(chunk)
                continue
            # under the chunk's own salt: a visitor's variant copies are its own too
            key = self.store.get_or_compile(chunk.token_ids, chunk.title, compile_fn,
                                            variant.name, chunk.salt)
            linked.append(self.store.fetch(key, compile_fn, variant.name))
        return linked

    def _link(self, request: Request) -> tuple[LinkAlgorithm, LinkResult]:
        """Fetch the chunks, lay out the prompt, check its size, link -> (algorithm, result)."""
        spec = request.algorithm
        algo = spec.algorithm(spec, self._context)
        stored = self._fetch(request.chunks)
        named = [c.key for c in stored if c.variant]
        if named:
            raise ValueError(f"chunk {named[0]!r} is a compile variant's: a request names "
                             "chunks by the keys their compile returned")
        plan = self._plan(request.prefix, [(c.key, c.title, c.token_ids) for c in stored],
                          request.question, request.max_new_tokens)
        plan.check()
        for key in request.chunks:  # the request is valid: now it counts as use
            if key in self.store:  # (a recompile above may have evicted an earlier chunk)
                self.store.get(key, hit=algo.reads_chunks)
        t0 = time.perf_counter()
        stored = self._variants(request, plan.layout, stored)
        compile_ms = (time.perf_counter() - t0) * 1e3
        with torch.inference_mode():
            job = LinkInput(self.model, plan.layout, stored,
                            plan.num_tokens + request.max_new_tokens, request.cache_salt)
            link = algo.link(job)
        if algo.compile_variant != DEFAULT_COMPILE:
            link.timings_ms["variant_compile_ms"] = compile_ms
        return algo, link

    def _fetch(self, keys: tuple[str, ...]) -> list[ChunkKV]:
        """A request's chunks, each stored here, recompiled from the token ids it had when
        evicted, or read from the shared store. Unknown keys fail here, with a message, before
        anything is computed."""
        return self.store.fetch_many(keys, partial(DEFAULT_COMPILE.compile, self.model))
