"""What a model call costs on this machine: its work, counted from the request before it runs,
and the prices of that work, measured on this engine at start-up.

Work is counted in the units the engine's time follows (README, "Where the time goes"): token
positions through a layer's matrix products, (query, key) products of attention, rows through
the vocabulary head, decode steps, cached positions gathered (rotated and copied), and runs
(tokenizing, layout, sampling). Each link algorithm's count is the set its final pass
computes, as the engine reports it (`RunResult.num_token_layers`); FLOPs per unit come from the
model's shape. `calibrate` times a short compile, prefill and decode of this engine and fits
the seconds per FLOP, per decode step, per gathered position and per run (app/budget.py
refines them with every call).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, fields, replace

from engine import AlgorithmSpec, Engine, Layout

CHECK_LAYER = 1  # CacheBlend computes layers 0..1 for every token (engine/link/cacheblend.py)
INSPECT_ROWS = 8  # attention rows an inspection captures: the last prompt token and answers


@dataclass(frozen=True)
class Work:
    """Model work of a call, added up over its runs (all counts summed over layers)."""

    runs: int = 0  # requests and compiles: each tokenizes, lays out, samples
    token_layers: int = 0  # (position, layer) pairs through the matrix products
    pairs: int = 0  # (query, key, layer) products of attention
    head_rows: int = 0  # rows through the vocabulary head (one per run, one per decode step)
    steps: int = 0  # decode steps (their products are counted above too)
    gathered: int = 0  # cached positions gathered into a request's KV

    def __add__(self, other: Work) -> Work:
        return Work(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __mul__(self, times: int) -> Work:
        return Work(*(getattr(self, f.name) * times for f in fields(self)))


@dataclass(frozen=True)
class Shape:
    """FLOPs per unit of work, from the model's shape."""

    num_layers: int
    linear_flops: float  # per (position, layer): q, k, v, o and the MLP
    attention_flops: float  # per (query, key, layer): QKᵀ and the weighted sum of V
    head_flops: float  # per row through the vocabulary head

    @classmethod
    def of(cls, engine: Engine) -> Shape:
        spec = engine.model.spec
        hidden, q, kv = spec.hidden_size, spec.num_heads * spec.head_dim, \
            spec.num_kv_heads * spec.head_dim
        inner = getattr(engine.model.hf_model.config, "intermediate_size", None) or 4 * hidden
        linear = 2 * (2 * hidden * q + 2 * hidden * kv + 3 * hidden * inner)
        return cls(spec.num_layers, float(linear), 4.0 * q, 2.0 * hidden * spec.vocab_size)

    def flops(self, work: Work) -> float:
        return (work.token_layers * self.linear_flops + work.pairs * self.attention_flops
                + work.head_rows * self.head_flops)


@dataclass(frozen=True)
class Prompt:
    """What a linked prompt's work depends on: its length and where its chunks sit."""

    num_tokens: int
    chunks: tuple[tuple[int, int], ...]  # (start, length) of each chunk, in prompt order
    suffix_start: int  # the question and the template's tail start here

    @classmethod
    def of(cls, layout: Layout) -> Prompt:
        return cls(layout.num_tokens, tuple((s.start, len(s.token_ids)) for s in layout.chunks),
                   layout.segments[-1].start)

    @classmethod
    def synthetic(cls, chunk_lengths: list[int], prefix: int, suffix: int) -> Prompt:
        """A prompt of chunks of these lengths behind `prefix` and before `suffix` tokens."""
        chunks, start = [], prefix
        for length in chunk_lengths:
            chunks.append((start, length))
            start += length
        return cls(start + suffix, tuple(chunks), start)


def span_pairs(start: int, count: int) -> int:
    """Keys seen by the positions start..start+count-1 of a causal prompt: sum of (p + 1)."""
    end = start + count
    return (end * (end + 1) - start * (start + 1)) // 2


def _pass(num_positions: int, pairs: int, layers: int) -> Work:
    return Work(token_layers=num_positions * layers, pairs=pairs * layers)


def link_work(prompt: Prompt, spec: AlgorithmSpec, num_layers: int) -> Work:
    """The work of linking `prompt` under `spec` (without decoding): one run, its gather and
    the passes its algorithm computes. An algorithm this table does not know is counted as
    full recompute, the most any of them computes."""
    n, layers = prompt.num_tokens, num_layers
    cached = sum(length for _, length in prompt.chunks)
    new, new_pairs = n - cached, span_pairs(0, n) - sum(span_pairs(s, c) for s, c in prompt.chunks)
    heads = [(s, c) for s, c in prompt.chunks if s != 0]  # chunks behind others: false sinks
    base = Work(runs=1, head_rows=1, gathered=cached)
    name = spec.name
    if name in ("naive", "legolink0", "ape"):  # no chunk position computed at link time
        return base + _pass(new, new_pairs, layers)
    if name == "legolink":
        k = int(spec["recompute_k"])
        return base + _pass(new + sum(min(k, c) for _, c in heads),
                            new_pairs + sum(span_pairs(s, min(k, c)) for s, c in heads), layers)
    if name == "cacheblend":
        check = min(CHECK_LAYER, layers - 1)
        ratio = float(spec["recompute_ratio"])  # positions chosen by the forward: on average
        chosen = int(cached * ratio)
        chosen_pairs = round((span_pairs(0, n) - new_pairs) * ratio)
        return (base + _pass(n, span_pairs(0, n), check + 1)
                + _pass(new + chosen, new_pairs + chosen_pairs, layers - check - 1))
    cls = spec.algorithm
    if hasattr(cls, "probe_share"):  # the query-aware family: QueryLink's probe, declared
        return base + _querylink(prompt, int(spec["recompute_k"]), layers, new, new_pairs, heads,
                                 cls)
    return Work(runs=1, head_rows=1) + _pass(n, span_pairs(0, n), layers)


def _querylink(prompt: Prompt, k: int, layers: int, new: int, new_pairs: int,
               heads: list[tuple[int, int]], cls: type) -> Work:
    """The passes of QueryLink and its family (ProphetKV, InfoFlow), as each class declares
    them (engine/link/querylink.py: `num_sinks`, `probe_share`, `num_scorings`): the budget is
    LegoLink's; past the forced sink tokens it spends the rest where probes of the first
    layers point (counted at the candidates' mean)."""
    forced = [(s, min(cls.num_sinks, k, c)) for s, c in heads]
    num_forced, forced_pairs = sum(c for _, c in forced), sum(span_pairs(s, c) for s, c in forced)
    candidates = [(s + f, c - f) for (s, c), (_, f) in zip(heads, forced, strict=True)]
    num_candidates = sum(c for _, c in candidates)
    candidate_pairs = sum(span_pairs(s, c) for s, c in candidates)
    free = sum(min(k, c) for _, c in heads) - num_forced
    if free <= 0 or free >= num_candidates:  # nothing to choose: one pass
        extra, extra_pairs = (num_candidates, candidate_pairs) if free > 0 else (0, 0)
        return _pass(new + num_forced + extra, new_pairs + forced_pairs + extra_pairs, layers)
    depth = max(1, min(layers, round(cls.probe_share * layers)))
    chosen_pairs = round(candidate_pairs * free / num_candidates)
    suffix = prompt.num_tokens - prompt.suffix_start
    suffix_pairs = span_pairs(prompt.suffix_start, suffix)
    first, first_pairs = num_forced + free + suffix, forced_pairs + chosen_pairs + suffix_pairs
    prefix, prefix_pairs = new - suffix, new_pairs - suffix_pairs
    return (_pass(new, new_pairs, depth) * cls.num_scorings + _pass(first, first_pairs, depth)
            + _pass(prefix + first, prefix_pairs + first_pairs, layers - depth))


def decode_work(num_prompt_tokens: int, new_tokens: int, num_layers: int) -> Work:
    """Decoding `new_tokens` after a prompt: every token after the first is one step."""
    steps = max(new_tokens - 1, 0)
    return Work(steps=steps, head_rows=steps, token_layers=steps * num_layers,
                pairs=span_pairs(num_prompt_tokens, steps) * num_layers)


def run_work(prompt: Prompt, spec: AlgorithmSpec, new_tokens: int, num_layers: int,
             held: frozenset[int] = frozenset()) -> Work:
    """One request: its chunks' compile variant if it needs one (`variant_work`), link, then
    decode up to `new_tokens`."""
    return (variant_work(prompt, spec, num_layers, held) + link_work(prompt, spec, num_layers)
            + decode_work(prompt.num_tokens, new_tokens, num_layers))


def variant_work(prompt: Prompt, spec: AlgorithmSpec, num_layers: int,
                 held: frozenset[int] = frozenset()) -> Work:
    """An algorithm whose chunks need a compile variant (LegoLink-0, APE) compiles each chunk
    not opening the prompt on demand, but for those whose copy the store holds under the
    visitor's own salt (`held`: their starts, app/progress.py `held_variants`): those cost
    nothing. A copy anyone may share (an example's) is counted as missing, so an estimate
    never tells whether another visitor made it."""
    if not spec.algorithm.compile_variant.name:
        return Work()
    return sum((compile_work(length, num_layers) for start, length in prompt.chunks
                if start and start not in held), Work())


def inspect_work(prompt: Prompt, spec: AlgorithmSpec, num_layers: int,
                 held: frozenset[int] = frozenset()) -> Work:
    """One inspection: a run of INSPECT_ROWS new tokens, then those rows once more over the
    whole context with their scores captured."""
    rows = min(INSPECT_ROWS, prompt.num_tokens)
    return (run_work(prompt, spec, INSPECT_ROWS, num_layers, held)
            + _pass(rows, rows * (prompt.num_tokens + INSPECT_ROWS), num_layers))


def compile_work(num_tokens: int, num_layers: int) -> Work:
    """Compiling one chunk of `num_tokens`: a causal prefill at positions 0..T-1."""
    return Work(runs=1) + _pass(num_tokens, span_pairs(0, num_tokens), num_layers)


def document_work(num_tokens: int, chunk_tokens: int, num_layers: int) -> Work:
    """Compiling a document of `num_tokens`, chunked under the `chunk_tokens` budget."""
    num_chunks = max(1, -(-num_tokens // chunk_tokens))
    size, rest = divmod(num_tokens, num_chunks)
    return (compile_work(size + 1, num_layers) * rest
            + compile_work(size, num_layers) * (num_chunks - rest))


@dataclass(frozen=True)
class Prices:
    """Seconds per unit of work on this machine."""

    flop_s: float  # per FLOP of matrix products and attention
    step_s: float  # per decode step, beyond its FLOPs (on a CPU: per-step overhead)
    gather_s: float  # per cached position gathered
    run_s: float  # per run

    def seconds(self, shape: Shape, work: Work) -> float:
        return (shape.flops(work) * self.flop_s + work.steps * self.step_s
                + work.gathered * self.gather_s + work.runs * self.run_s)


CALIBRATION_TOKENS = (64, 1024)  # two chunks compiled, then linked in one prompt
CALIBRATION_NEW_TOKENS = 8


def calibrate(engine: Engine) -> Prices:
    """Time a short compile, prefill and decode of `engine`'s model on this machine -> Prices.

    It runs on a scratch engine over the same model (its own empty store and prefix cache),
    so no visitor's chunks, hits or counts move. Each measurement prices one unit: two
    compiles of different sizes (the same code path) give the seconds per FLOP; the two
    chunks linked by full recompute give, from what is left of its time to the first token,
    a run's overhead, and from its time per output token a decode step's; linked naively,
    they give a gathered position's."""
    from bench.text import fresh_question, text_of_tokens

    scratch = Engine(replace(engine.config, store_url="", store_prefetch=False),
                     model=engine.model)
    shape, layers, rng = Shape.of(engine), engine.model.spec.num_layers, random.Random(0)
    cap = max(8, engine.context_limit // 4)
    for size in CALIBRATION_TOKENS:  # warm-up, untimed: a first forward of a shape is slower
        scratch.compile(text_of_tokens(scratch.tokenizer, min(size, cap), rng))
    samples, keys = [], []
    for size in CALIBRATION_TOKENS:
        text = text_of_tokens(scratch.tokenizer, min(size, cap), rng)
        start = time.perf_counter()
        keys.append(scratch.compile(text))
        seconds = time.perf_counter() - start
        samples.append((shape.flops(compile_work(scratch.store.peek(keys[-1]).num_tokens,
                                                 layers)), seconds))
    (small, t_small), (large, t_large) = samples
    flop_s = max((t_large - t_small) / (large - small), 0.0) or t_large / large
    question = fresh_question(rng)
    full = scratch.run("", keys, question, "full_recompute",
                       max_new_tokens=CALIBRATION_NEW_TOKENS)
    prompt = Prompt.of(full.layout)
    link = link_work(prompt, AlgorithmSpec("full_recompute"), layers)
    run_s = max(full.ttft_ms / 1e3 - shape.flops(link) * flop_s, 0.0)
    one_step = decode_work(prompt.num_tokens, 2, layers)
    step_s = max(full.tpot_ms / 1e3 - shape.flops(one_step) * flop_s, 0.0)
    naive = scratch.run("", keys, question, "naive", max_new_tokens=1)
    link = link_work(prompt, AlgorithmSpec("naive"), layers)
    left = naive.ttft_ms / 1e3 - shape.flops(link) * flop_s - run_s
    return Prices(flop_s, step_s, max(left, 0.0) / max(link.gathered, 1), run_s)
