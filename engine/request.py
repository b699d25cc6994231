"""The one typed request.

Every caller's input (the app's controls, an API client's JSON, a benchmark's command line)
becomes a `Request` here, checked once, with the messages users see: the engine's limits from
its config, the algorithm and its parameters against their declarations (engine/link). The
context limit needs the chunks' tokens: `Engine.plan` checks it. The app and the benchmarks
never re-validate and never build labels of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.config import EngineConfig
from engine.link import AlgorithmSpec, real_number, whole_number


@dataclass(frozen=True)
class Request:
    """One prompt under one algorithm: checked, typed, ready for the engine."""

    prefix: str
    chunks: tuple[str, ...]  # chunk keys in prompt order (the same key may repeat)
    question: str
    algorithm: AlgorithmSpec
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy
    seed: int | None = None  # for sampling
    cache_salt: str = ""  # prefix_cache reuses only earlier requests with the same salt

    @classmethod
    def make(cls, config: EngineConfig, prefix: Any = "", chunks: Any = (), question: Any = "",
             algorithm: Any = "legolink", max_new_tokens: Any = 32, temperature: Any = 0.0,
             seed: Any = None, cache_salt: Any = "", **parameters: Any) -> Request:
        """Check loosely typed inputs -> Request; a ValueError names the first problem.

        `algorithm` is a name, a label ("legolink-16") or an AlgorithmSpec; `parameters` are
        values by keyword (recompute_k=16, recompute_ratio=0.15, ...), None for the default:
        each is checked against its declaration, and the algorithm takes its own. `cache_salt`
        keys what prefix caching reuses (one per visitor: no request reads another's)."""
        spec = AlgorithmSpec.of(algorithm, **parameters)
        if not isinstance(prefix, str) or not isinstance(question, str):
            raise ValueError("prefix and question must be text")
        if not question.strip():
            raise ValueError("the question is empty: ask something")
        if chunks is None:
            chunks = ()
        if isinstance(chunks, str) or not all(isinstance(c, str) for c in chunks):
            raise ValueError("chunks must be a list of chunk keys")
        if not chunks:
            raise ValueError("no chunks chosen: pick at least one compiled chunk")
        if len(chunks) > config.max_chunks_per_request:
            raise ValueError(f"too many chunks: {len(chunks)} given, at most "
                             f"{config.max_chunks_per_request} per request")
        max_new_tokens = whole_number(max_new_tokens, "max_new_tokens", 1, config.max_new_tokens)
        temperature = real_number(temperature, "temperature", 0.0, 10.0)
        if seed is not None:
            seed = whole_number(seed, "seed", 0, 2**63 - 1)
        if not isinstance(cache_salt, str):
            raise ValueError("cache_salt must be text")
        return cls(prefix, tuple(chunks), question, spec, max_new_tokens, temperature, seed,
                   cache_salt)
