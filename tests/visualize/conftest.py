"""Hand-made engine results with known values, so figures can be checked number by number."""

from __future__ import annotations

import pytest
import torch

from engine import InspectResult, Kind, Layout, RunResult, Segment

N, C, R = Kind.NEW, Kind.CACHED, Kind.RECOMPUTED


def make_layout() -> Layout:
    """prefix 0-2, chunk "alpha" 3-7, chunk "beta" 8-11, suffix 12-14: 15 tokens."""
    segments = (Segment("prefix", 0, (1, 2, 3)),
                Segment("chunk", 3, (4, 5, 6, 7, 8), key="ka", title="alpha"),
                Segment("chunk", 8, (9, 10, 11, 12), key="kb", title="beta"),
                Segment("suffix", 12, (13, 14, 15)))
    return Layout(tuple(t for s in segments for t in s.token_ids), segments)


def make_run(algorithm: str, mask: tuple[int, ...], ttft_ms: float, text: str = "yes",
             layout: Layout | None = None) -> RunResult:
    """A RunResult with the given mask and TTFT; the rest filled consistently."""
    layout = layout or make_layout()
    computed = sum(1 for m in mask if m != C)
    return RunResult(algorithm=algorithm, text=text, token_ids=(1, 2), ttft_ms=ttft_ms,
                     tpot_ms=1.0, num_prompt_tokens=layout.num_tokens, num_recomputed=computed,
                     num_token_layers=2 * computed, mask=mask,
                     first_token_logprobs=torch.log_softmax(torch.zeros(8), dim=0),
                     layout=layout, stop_reason="length",
                     timings_ms={"gather_ms": 1.5, "forward_ms": ttft_ms - 2})


MASKS = {
    "full_recompute": (N,) * 3 + (R,) * 9 + (N,) * 3,
    "naive": (N,) * 3 + (C,) * 9 + (N,) * 3,
    "legolink-2": (N,) * 3 + (R, R, C, C, C) + (R, R, C, C) + (N,) * 3,
}


@pytest.fixture()
def runs() -> list[RunResult]:
    return [make_run("full_recompute", MASKS["full_recompute"], 100.0),
            make_run("naive", MASKS["naive"], 25.0),
            make_run("legolink-2", MASKS["legolink-2"], 40.0)]


def make_inspection(algorithm: str, seed: int) -> InspectResult:
    """2 layers, 3 heads, 2 query rows (positions 14 and 15) over 16 keys; the first row
    cannot see key 15 (-inf), as in a real causal inspection."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(2, 3, 2, 16, generator=generator)
    scores[:, :, 0, 15] = float("-inf")
    run = make_run(algorithm, MASKS["naive"], 10.0)
    return InspectResult(run, scores, (14, 15), ("\n", "yes"))


@pytest.fixture()
def inspections() -> dict[str, InspectResult]:
    return {"naive": make_inspection("naive", 0), "legolink-2": make_inspection("legolink-2", 1)}
