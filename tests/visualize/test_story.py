"""The guided story's figure, from a hand-made story dict."""

from __future__ import annotations

from visualize.story import story_figure
from visualize.style import MAX_TITLE_CHARS


def request(name: str, compiled: int, hits: int, pc: tuple, lego: tuple) -> dict:
    return {"name": name, "compiled": compiled, "hits": hits,
            "runs": {"prefix_cache": {"tokens_reused": pc[0], "ttft_ms": pc[1]},
                     "legolink-16": {"tokens_reused": lego[0], "ttft_ms": lego[1]}}}


STORY = {"device": "cpu", "compiled_before": 2, "requests": [
    request("R1: prefix 1, order 1", 0, 2, (0, 900.0), (700, 120.0)),
    request("R2: prefix 1, order 2", 0, 4, (40, 880.0), (700, 118.0)),
    request("R3: prefix 2, order 1", 1, 6, (5, 905.0), (700, 130.0)),
    request("R4: prefix 2, order 2", 0, 8, (40, 870.0), (700, 119.0)),
]}


def test_story_panels_hold_the_numbers():
    fig = story_figure(STORY)
    bars = {(t.name, t.yaxis): list(t.y) for t in fig.data if t.type == "bar"}
    assert bars[("prefix_cache", "y")] == [0, 40, 5, 40]
    assert bars[("legolink-16", "y")] == [700] * 4
    assert bars[("legolink-16", "y2")] == [120.0, 118.0, 130.0, 119.0]
    lines = {t.name: list(t.y) for t in fig.data if t.type == "scatter"}
    assert lines == {"compile passes": [2, 2, 3, 3], "chunk hits": [2, 4, 6, 8]}
    assert [t.showlegend for t in fig.data if t.type == "bar"] == [True, False, True, False]
    assert len(fig.layout.title.text) <= MAX_TITLE_CHARS


def test_an_empty_story_says_what_to_do():
    assert "Run the story" in story_figure(None).layout.annotations[0].text
