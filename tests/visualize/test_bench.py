"""Benchmark figures from result dicts shaped like run_accuracy's and run_speed's."""

from __future__ import annotations

import pytest

from visualize.bench import score_vs_ttft, ttft_vs_length
from visualize.style import algorithm_color

ACCURACY = {
    "dataset": "hotpotqa", "n": 3, "device": "cpu",
    "algorithms": {
        "full_recompute": {"score": 0.5, "agreement": 1.0, "first_token_kl": 0.0,
                           "ttft_ms_median": 2000.0, "recompute_share": 1.0},
        "naive": {"score": 0.3, "agreement": 0.4, "first_token_kl": 0.26,
                  "ttft_ms_median": 200.0, "recompute_share": 0.0},
        "legolink-16": {"score": 0.45, "agreement": 0.8, "first_token_kl": 0.12,
                        "ttft_ms_median": 350.0, "recompute_share": 0.1},
    },
}


def block(tokens: float, times: dict[str, float], hf: float) -> dict:
    return {"context_tokens": tokens, "hf_prefill_ms_median": hf,
            "algorithms": {label: {"ttft_ms_median": t} for label, t in times.items()}}


SPEED = {"device": "cpu", "sweep": {
    "512": block(520.0, {"full_recompute": 800.0, "naive": 90.0}, 780.0),
    "1024": block(1030.0, {"full_recompute": 1700.0, "naive": 120.0}, 1650.0),
}}


def test_score_vs_ttft_panels():
    fig = score_vs_ttft(ACCURACY)
    score, kl = fig.data[0::2], fig.data[1::2]  # per algorithm: its score point, its KL point
    labels = ["full_recompute", "naive", "legolink-16"]
    assert [t.name for t in score] == labels == [t.name for t in kl]
    assert [t.showlegend for t in fig.data] == [True, False] * 3  # named once, in the legend
    assert [t.x[0] for t in score] == [2000.0, 200.0, 350.0] == [t.x[0] for t in kl]
    assert [t.y[0] for t in score] == [0.5, 0.3, 0.45]
    assert [t.y[0] for t in kl] == [0.0, 0.26, 0.12]
    assert [t.marker.color for t in score] == [algorithm_color(a) for a in labels]
    assert [list(t.customdata[0]) for t in score] == [[1.0, 1.0], [0.4, 0.0], [0.8, 0.1]]
    assert all(t.mode == "markers" for t in fig.data)  # no text labels to overlap
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    assert fig.layout.title.text == "hotpotqa · n=3 · cpu"


def test_ttft_vs_length_lines():
    fig = ttft_vs_length(SPEED)
    assert [t.name for t in fig.data] == ["full_recompute", "naive", "HF prefill"]
    assert list(fig.data[0].x) == [520.0, 1030.0]
    assert list(fig.data[0].y) == [800.0, 1700.0]
    assert list(fig.data[1].y) == [90.0, 120.0]
    assert list(fig.data[2].y) == [780.0, 1650.0]
    assert fig.layout.yaxis.type == "log"
    assert list(fig.layout.xaxis.tickvals) == [520.0, 1030.0]


def test_two_settings_of_one_algorithm_share_a_colour_not_a_dash():
    fig = ttft_vs_length({"sweep": {"512": block(
        520.0, {"naive": 90.0, "legolink-2": 95.0, "legolink-16": 130.0}, 780.0)}})
    lego2, lego16 = fig.data[1], fig.data[2]
    assert lego2.line.color == lego16.line.color == algorithm_color("legolink")
    assert (lego2.line.dash, lego16.line.dash) == ("solid", "dash"), "indistinguishable lines"


@pytest.mark.parametrize(("figure", "message"), [
    (lambda: score_vs_ttft({}), "Run the accuracy benchmark"),
    (lambda: ttft_vs_length({"sweep": {}}), "Run the speed sweep"),
])
def test_empty_benchmark_figures(figure, message):
    assert message in figure().layout.annotations[0].text
