"""Decoding from a linked prompt: greedy or seeded sampling, streaming, TTFT and TPOT."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from engine.link import Counts, Layout, LinkResult
from engine.runtime import Batch, Model, now_ms


@dataclass(frozen=True)
class RunResult:
    """One request's outcome under one link algorithm."""

    algorithm: str  # label, e.g. "legolink-16"
    text: str
    token_ids: tuple[int, ...]  # generated tokens (a stop token is not included)
    ttft_ms: float  # arrival -> first token: tokenizing, KV gathering, re-rotation included
    tpot_ms: float  # mean time per output token after the first (0 with one token)
    num_prompt_tokens: int
    num_recomputed: int  # prompt positions computed in the final pass (new + recomputed)
    num_token_layers: int  # (position, layer) pairs computed while linking
    mask: tuple[int, ...]  # Kind per prompt position
    first_token_logprobs: torch.Tensor  # [vocab_size] fp32 on the CPU
    layout: Layout
    stop_reason: str  # "eos" | "length"
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def counts(self) -> Counts:
        """Prompt positions new, cached (reused) and recomputed."""
        return Counts.of(self.mask)

    @property
    def recompute_share(self) -> float:
        """Share of the prompt's cached tokens that were recomputed (0 when none are cached)."""
        return self.counts.recompute_share


@dataclass(frozen=True)
class StreamPiece:
    """One step of a streamed answer; `result` is set on the last piece only."""

    delta: str
    text: str
    result: RunResult | None = None


def stop_token_ids(model: Model) -> set[int]:
    ids = {model.tokenizer.eos_token_id}
    gen = getattr(model.hf_model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    ids.update(eos if isinstance(eos, list) else [eos])
    return {i for i in ids if i is not None}


@torch.inference_mode()
def generate(model: Model, link: LinkResult, arrival_ms: float, max_new_tokens: int,
             temperature: float = 0.0, seed: int | None = None) -> Iterator[StreamPiece]:
    """Decode from `link`, yielding text as it grows; the last piece carries the RunResult.

    arrival_ms is the request's arrival on the `time.perf_counter` clock in ms, so TTFT covers
    everything between it and the first sampled token.
    """
    generator = None
    if temperature > 0:
        generator = torch.Generator(device="cpu").manual_seed(seed if seed is not None else 0)

    def sample(logits: torch.Tensor) -> int:
        if temperature <= 0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))

    stops, kv, n = stop_token_ids(model), link.kv, link.layout.num_tokens
    token = sample(link.logits)
    first_ms = now_ms(model.device)
    ids: list[int] = []
    text, reason, last_delta, num_steps = "", "length", "", 0
    for step in range(max_new_tokens):
        if token in stops:
            reason = "eos"
            break
        ids.append(token)
        new_text = model.tokenizer.decode(ids, skip_special_tokens=True)
        delta, text = new_text[len(text):], new_text
        if step + 1 == max_new_tokens:
            last_delta = delta
            break
        yield StreamPiece(delta, text)
        num_steps += 1
        # Feed the token just sampled at the next position: a causal run of one.
        batch = (link.decode_batch(n + step) if link.decode_batch is not None
                 else Batch.run(n + step, 1, model.device))
        h = model.forward(model.embed(torch.tensor([token], device=model.device)), batch, kv).h
        token = sample(model.logits(h)[0])
    end_ms = now_ms(model.device)
    result = RunResult(
        algorithm=link.algorithm, text=text, token_ids=tuple(ids),
        ttft_ms=first_ms - arrival_ms,
        tpot_ms=(end_ms - first_ms) / num_steps if num_steps else 0.0,
        num_prompt_tokens=n, num_recomputed=link.num_recomputed,
        num_token_layers=link.num_token_layers, mask=tuple(link.mask.tolist()),
        first_token_logprobs=torch.log_softmax(link.logits.float(), dim=-1).cpu(),
        layout=link.layout, stop_reason=reason, timings_ms=dict(link.timings_ms))
    yield StreamPiece(last_delta, text, result)
