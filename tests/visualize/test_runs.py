"""TTFT bars and recompute-mask strips, checked against the runs they draw."""

from __future__ import annotations

import time

import pytest

from engine import Kind, Layout, Segment
from tests.visualize.conftest import MASKS, C, N, make_run
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
    legend = {t.name: t.marker.color for t in fig.data[1:] if t.name}
    assert legend == {"new (not cached)": KIND_COLORS[Kind.NEW],
                      "cached (reused)": KIND_COLORS[Kind.CACHED],
                      "recomputed": KIND_COLORS[Kind.RECOMPUTED]}


def test_mask_strip_marks_chunk_starts_and_the_question(runs):
    fig = recompute_mask_strip(runs, TOKENS)
    chunk_lines, question_line = fig.data[-2:]
    # chunk alpha at 3, beta at 8: one trace of segments split by None; the question at 12
    assert list(chunk_lines.x) == [2.5, 2.5, None, 7.5, 7.5, None]
    assert list(question_line.x) == [11.5, 11.5] and question_line.line.dash == "dot"
    assert not fig.layout.shapes
    assert list(fig.layout.xaxis.tickvals) == [3, 8]
    assert list(fig.layout.xaxis.ticktext) == ["C1", "C2"]


def test_mask_strip_grows_linearly_with_the_chunks():
    """Issue 14: one add_vline per chunk made 400 chunks take 130 s (quadratic)."""
    n = 4000
    segments = [Segment("prefix", 0, (1,))]
    segments += [Segment("chunk", 1 + 2 * i, (5, 6), key=f"k{i}", title=f"c{i}")
                 for i in range(n)]
    segments.append(Segment("suffix", 1 + 2 * n, (7,)))
    layout = Layout(tuple(t for s in segments for t in s.token_ids), tuple(segments))
    run = make_run("naive", (N,) + (C,) * (2 * n) + (N,), 1.0, layout=layout)
    start = time.perf_counter()
    fig = recompute_mask_strip([run], ["x"] * layout.num_tokens)
    seconds = time.perf_counter() - start
    assert len(fig.data) == 6 and not fig.layout.shapes  # heatmap, 3 legend keys, 2 line traces
    assert len(fig.layout.xaxis.tickvals) == 40  # labels thinned to MAX_TICKS
    assert seconds < 30, seconds  # 4,000 add_vline calls took many minutes


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
