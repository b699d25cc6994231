"""TTFT bars and recompute-mask strips, checked against the runs they draw."""

from __future__ import annotations

import pytest

from engine.link import Kind
from tests.visualize.conftest import MASKS, make_run
from visualize.mask import recompute_mask_strip, segment_names
from visualize.style import KIND_COLORS, algorithm_color, token_label
from visualize.ttft import ttft_bars

TOKENS = ["<|im_start|>", "sys", "\n", "al", "pha", " ", "x", "\n\n", "be", "ta", " y",
          "\n\n", "Q", "?", "\n"]


def test_ttft_bars_values_colours_and_speedups(runs):
    fig = ttft_bars(runs)
    bar = fig.data[0]
    assert list(bar.x) == ["full_recompute", "naive", "legolink-2"]
    assert list(bar.y) == [100.0, 25.0, 40.0]
    assert list(bar.text) == ["100 ms", "25 ms · 4.0×", "40 ms · 2.5×"]
    assert list(bar.marker.color) == [algorithm_color(a) for a in bar.x]
    assert algorithm_color("legolink-2") == algorithm_color("legolink") != algorithm_color("naive")
    # hover data: computed tokens of the prompt (new + recomputed) out of all 15
    assert [row[:2] for row in bar.customdata] == [[15, 15], [6, 15], [10, 15]]
    assert fig.layout.yaxis.range[1] == pytest.approx(120.0)


def test_ttft_bars_without_reference_has_no_speedups(runs):
    fig = ttft_bars(runs[1:])
    assert list(fig.data[0].text) == ["25 ms", "40 ms"]
    assert "speed-up" not in fig.layout.title.text


def test_empty_figures_say_what_to_do():
    assert "Run a comparison" in ttft_bars([]).layout.annotations[0].text
    assert "Run a comparison" in recompute_mask_strip([], []).layout.annotations[0].text


def test_mask_strip_rows_are_the_masks(runs):
    fig = recompute_mask_strip(runs, TOKENS)
    heatmap = fig.data[0]
    assert [list(row) for row in heatmap.z] == [list(MASKS[r.algorithm]) for r in runs]
    assert list(fig.layout.yaxis.ticktext) == ["full_recompute", "naive", "legolink-2"]
    # legend: one entry per kind, in the kind's colour
    legend = {t.name: t.marker.color for t in fig.data[1:]}
    assert legend == {"new (not cached)": KIND_COLORS[Kind.NEW],
                      "cached (reused)": KIND_COLORS[Kind.CACHED],
                      "recomputed": KIND_COLORS[Kind.RECOMPUTED]}


def test_mask_strip_marks_chunk_starts_and_the_question(runs):
    fig = recompute_mask_strip(runs, TOKENS)
    lines = sorted(shape.x0 for shape in fig.layout.shapes)
    assert lines == [2.5, 7.5, 11.5]  # chunk alpha at 3, beta at 8, the question at 12
    assert list(fig.layout.xaxis.tickvals) == [3, 8]
    assert list(fig.layout.xaxis.ticktext) == ["C1", "C2"]


def test_mask_strip_hover_shows_token_segment_and_kind(runs):
    custom = recompute_mask_strip(runs, TOKENS).data[0].customdata
    # legolink row, position 0: the escaped special token of the prefix, new
    assert list(custom[2][0]) == ["&lt;|im_start|&gt;", "prefix", "new (not cached)"]
    assert list(custom[2][8]) == ["be", "chunk 2: beta", "recomputed"]
    assert list(custom[2][10]) == ["·y", "chunk 2: beta", "cached (reused)"]
    assert list(custom[0][14]) == ["↵", "suffix", "new (not cached)"]


def test_mask_strip_refuses_tokens_of_another_prompt(runs):
    with pytest.raises(ValueError, match="3 tokens given for a prompt of 15"):
        recompute_mask_strip(runs, ["a", "b", "c"])


def test_segment_names_cover_every_position():
    names = segment_names(make_run("naive", MASKS["naive"], 1.0).layout)
    assert names == ["prefix"] * 3 + ["chunk 1: alpha"] * 5 + ["chunk 2: beta"] * 4 + \
        ["suffix"] * 3


def test_token_label_shows_whitespace_and_escapes_html():
    assert token_label(" a\tb\n") == "·a⇥b↵"
    assert token_label("<b>") == "&lt;b&gt;"
    assert token_label("") == "∅"
    assert token_label("x" * 40, max_chars=5) == "xxxx…"
