"""The frontier figure, checked against a hand-made frontier dict."""

from __future__ import annotations

from visualize.frontier import frontier_figure
from visualize.style import algorithm_color


def _row(kl: float, ttft: float) -> dict[str, float]:
    return {"first_token_kl": kl, "ttft_ms_median": ttft, "recompute_share": 0.1,
            "agreement": 0.5, "score": 0.2}


def _frontier() -> dict:
    rows = {"full_recompute": _row(0.0, 900.0), "naive": _row(0.25, 250.0),
            "legolink-16": _row(0.11, 400.0), "legolink-2": _row(0.15, 245.0),
            "querylink-16": _row(0.05, 470.0)}
    block = {"num_chunks": 6, "n": 3, "context_tokens_mean": 1100.0, "algorithms": rows}
    return {"dataset": "hotpotqa", "model": "m", "device": "cpu",
            "lengths": {"6": block, "16": {**block, "num_chunks": 16}}}


def test_one_panel_per_length_and_families_in_parameter_order():
    fig = frontier_figure(_frontier())
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["6 chunks · 1100 tokens · n=3", "16 chunks · 1100 tokens · n=3"]
    first_panel = [t for t in fig.data if t.xaxis == "x"]
    assert [t.legendgroup for t in first_panel] == ["full_recompute", "naive", "legolink",
                                                    "querylink"]
    assert [t.name for t in first_panel] == ["full_recompute", "naive", "legolink-{2,16}",
                                             "querylink-16"], "the legend names every setting"
    lego = first_panel[2]
    assert lego.hovertext == ("legolink-2", "legolink-16"), "joined in order of k, not of input"
    assert lego.x == (245.0, 400.0) and lego.y == (0.15, 0.11)
    assert lego.line.color == algorithm_color("legolink-16")
    assert algorithm_color("querylink-16") != algorithm_color("legolink-16")
    assert sum(t.showlegend for t in fig.data) == 4, "one legend entry per algorithm"
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"


def test_empty_frontier_says_what_to_do():
    fig = frontier_figure({})
    assert "Run the frontier benchmark" in fig.layout.annotations[0].text
