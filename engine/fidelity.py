"""Fidelity to full recompute: one definition, used by the app and the benchmarks alike.

- first-token match: the greedy first answer token equals the reference's;
- answer match: the whole generated token sequence equals the reference's (token ids, not
  text: two answers that decode alike but differ in tokens do not match);
- first differing token: where the answer leaves the reference's (None when it never does);
- first-token KL: KL(reference || run) of the first answer token's distribution, in nats;
- counts by kind of position: new, cached (reused), recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.generate import RunResult
from engine.link import Counts


def kl_divergence(p_logprobs: torch.Tensor, q_logprobs: torch.Tensor) -> float:
    """KL(P || Q) in nats between two distributions over one vocabulary, given as log-probs.

    Both are renormalised with a log-softmax in float64 (a no-op on exact log-probabilities,
    a correction for bf16 ones; raw logits work too) and summed in float64. Tokens with
    P = 0 contribute nothing; a token with P > 0 and Q = 0 makes the result infinite.
    """
    if p_logprobs.shape != q_logprobs.shape:
        raise ValueError(f"shapes differ: {tuple(p_logprobs.shape)} vs {tuple(q_logprobs.shape)}")
    if p_logprobs.numel() == 0 or p_logprobs.numel() != p_logprobs.shape[-1]:
        raise ValueError(f"expected one distribution over the vocabulary, got shape "
                         f"{tuple(p_logprobs.shape)}")
    log_p = torch.log_softmax(p_logprobs.detach().reshape(-1).to("cpu", torch.float64), dim=0)
    log_q = torch.log_softmax(q_logprobs.detach().reshape(-1).to("cpu", torch.float64), dim=0)
    p = log_p.exp()
    # where(), not p * (log_p - log_q): 0 * (-inf - -inf) would be NaN for tokens P never picks.
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    # KL is never negative; rounding can leave -1e-17 for equal distributions.
    return max(float(terms.sum()), 0.0)


@dataclass(frozen=True)
class Fidelity:
    """One run measured against the reference run of the same prompt."""

    first_token_match: bool
    answer_match: bool
    first_difference: int | None  # index of the first answer token that differs; None: none
    first_token_kl: float
    counts: Counts


def first_difference(a: tuple[int, ...], b: tuple[int, ...]) -> int | None:
    """Index of the first position where two token sequences differ (a shorter one differs
    where it ends); None when they are equal."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def measure(run: RunResult, reference: RunResult) -> Fidelity:
    """How faithful `run` is to `reference` (full recompute on the same token sequence)."""
    if run.layout.token_ids != reference.layout.token_ids and \
            run.layout.order_in(reference.layout) is None:  # a reordered prompt is the same
        raise ValueError("fidelity compares runs of the same prompt tokens only")
    first = int(run.first_token_logprobs.argmax()) == int(reference.first_token_logprobs.argmax())
    return Fidelity(first, run.token_ids == reference.token_ids,
                    first_difference(run.token_ids, reference.token_ids),
                    kl_divergence(reference.first_token_logprobs, run.first_token_logprobs),
                    run.counts)
