"""Fidelity to full recompute: KL divergence on hand-checked distributions, and the measures
the app and the benchmarks share."""

from __future__ import annotations

import math

import pytest
import torch

from engine.fidelity import kl_divergence


def _logprobs(*probs: float) -> torch.Tensor:
    return torch.tensor(probs, dtype=torch.float64).log()


def test_kl_of_identical_distributions_is_zero():
    logits = torch.randn(49152, generator=torch.Generator().manual_seed(0))
    logprobs = torch.log_softmax(logits, dim=-1)
    assert kl_divergence(logprobs, logprobs.clone()) == 0.0


def test_kl_two_point_distribution():
    p, q = _logprobs(0.5, 0.5), _logprobs(0.25, 0.75)
    # KL(P||Q) = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3) = 0.1438410...
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(4 / 3), abs=1e-12)
    # KL(Q||P) = 0.25 ln(0.5) + 0.75 ln(1.5) = 0.1308120...: KL is not symmetric
    assert kl_divergence(q, p) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5),
                                                abs=1e-12)


def test_kl_handles_zero_probabilities():
    # P = (1, 0), Q = (1/2, 1/2): the P = 0 token adds nothing; KL = 1 * ln 2.
    assert kl_divergence(_logprobs(1.0, 0.0), _logprobs(0.5, 0.5)) == pytest.approx(math.log(2))
    assert math.isinf(kl_divergence(_logprobs(0.5, 0.5), _logprobs(1.0, 0.0))), \
        "P > 0 where Q = 0 must give an infinite divergence"


def test_kl_renormalises_logits_and_low_precision_inputs():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 1000, generator=gen), torch.randn(1, 1000, generator=gen)
    exact = kl_divergence(torch.log_softmax(a.double(), -1), torch.log_softmax(b.double(), -1))
    assert kl_divergence(a, b) == pytest.approx(exact, rel=1e-9), "raw logits must work too"
    low = kl_divergence(torch.log_softmax(a, -1).bfloat16(), torch.log_softmax(b, -1).bfloat16())
    assert low == pytest.approx(exact, rel=0.05), "bf16 log-probs are summed in fp64"


def test_kl_rejects_mismatched_or_batched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        kl_divergence(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="one distribution"):
        kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3))
