"""Frontier labels never overlap: every label written beside a point has a box (estimated at a
phone's width) clear of every other label and marker and inside its panel, at that width and
any wider; every setting is named in the legend, whether its label fits or not."""

from __future__ import annotations

import itertools
import math

import pytest

from visualize.frontier import MARGIN_X_PX, PANEL_PX, frontier_figure, legend_name
from visualize.labels import (
    GAP_PX,
    MARKER_PX,
    PHONE_FIGURE_PX,
    POSITIONS,
    Box,
    Point,
    label_box,
    marker_box,
    place_labels,
)


def _row(kl: float, ttft: float) -> dict[str, float]:
    return {"first_token_kl": kl, "ttft_ms_median": ttft, "recompute_share": 0.1,
            "agreement": 0.6, "score": 0.05}


# The README's hotpotqa frontier with every method main runs (numbers of its two tables).
ROWS = {"full_recompute": _row(0.0, 1913), "naive": _row(0.255, 219),
        "legolink-2": _row(0.2, 230), "legolink-8": _row(0.15, 290),
        "legolink-16": _row(0.113, 375), "legolink-32": _row(0.09, 520),
        "legolink0": _row(0.243, 216), "cacheblend-5": _row(0.12, 400),
        "cacheblend-15": _row(0.08, 574), "cacheblend-30": _row(0.05, 900),
        "cacheblend-key-15": _row(0.066, 940), "ape": _row(0.241, 331),
        "querylink-4": _row(0.14, 300), "querylink-8": _row(0.1, 380),
        "querylink-16": _row(0.062, 502), "querylink-32": _row(0.04, 700),
        "prophetkv-16": _row(0.058, 656), "infoflow-16": _row(0.06, 610)}
FRONTIER = {"dataset": "hotpotqa", "model": "SmolLM2-135M", "device": "cpu", "lengths": {
    "6": {"num_chunks": 6, "n": 10, "context_tokens_mean": 1165.0, "algorithms": ROWS}}}


def panel_points(fig, width_px: float) -> list[tuple[Point, str | None]]:
    """Each point of the first panel in pixels of a plot area `width_px` wide (the panel's
    own axis ranges), with the position of its label (None: not written)."""
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    height = PANEL_PX
    out = []
    for trace in fig.data:
        for x, y, text, name, position in zip(trace.x, trace.y, trace.text, trace.hovertext,
                                              trace.textposition, strict=True):
            point = Point(name, (math.log10(x) - x0) / (x1 - x0) * width_px,
                          (1 - (y - y0) / (y1 - y0)) * height)
            out.append((point, position if text else None))
    return out


def assert_clear(points: list[tuple[Point, str | None]], width_px: float) -> None:
    boxes = [(p.label, label_box(p, pos)) for p, pos in points if pos]
    for label, box in boxes:
        assert box.inside(width_px, PANEL_PX), f"{label} leaves its panel"
        for point, _ in points:
            if point.label != label:
                assert not box.overlaps(marker_box(point)), f"{label} covers {point.label}"
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        assert not box_a.overlaps(box_b), f"labels {a} and {b} overlap"


def test_no_label_overlaps_on_a_phone_or_wider():
    fig = frontier_figure(FRONTIER)
    phone = PHONE_FIGURE_PX - MARGIN_X_PX
    placed = [p.label for p, pos in panel_points(fig, phone) if pos]
    assert len(placed) >= 8, f"half the labels fit even on a phone, got {placed}"
    assert {"full_recompute", "naive", "legolink-2", "cacheblend-15"} <= set(placed)
    for width in (phone, phone * 1.7, phone * 4.6):  # a phone, a tablet, 1440 px
        assert_clear(panel_points(fig, width), width)


def test_the_legend_names_every_setting_and_the_hover_each_point():
    fig = frontier_figure(FRONTIER)
    legend = " ".join(t.name for t in fig.data)
    assert legend_name("legolink", ["legolink-2", "legolink-32"]) == "legolink-{2,32}"
    assert "legolink-{2,8,16,32}" in legend and "cacheblend-key-15" in legend
    assert sorted(h for t in fig.data for h in t.hovertext) == sorted(ROWS)
    assert sum(bool(t.showlegend) for t in fig.data) == 10, "one entry per algorithm"


def test_a_crowd_leaves_labels_off_rather_than_overlapping():
    crowd = [Point(f"method-{i}", 50 + i, 50 + i) for i in range(6)]
    assert set(place_labels(crowd, 200, 200).values()) == {None}, "no room beside any"
    row = [Point(f"m{i}", 20 + 30 * i, 100) for i in range(6)]  # 30 px apart, labels 12.8
    chosen = place_labels(row, 200, 200)
    boxes = [label_box(p, chosen[p.label]) for p in row if chosen[p.label]]
    assert len(boxes) == len(row), chosen
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    wide = [Point(f"a-long-name-{i}", 20 + 30 * i, 20 + 10 * i) for i in range(6)]  # 83 px
    chosen = place_labels(wide, 200, 200)
    boxes = [label_box(p, chosen[p.label]) for p in wide if chosen[p.label]]
    assert 1 <= len(boxes) < len(wide), chosen
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_label_boxes_sit_where_plotly_writes_the_text():
    point = Point("abc", 100.0, 100.0)
    above, right = label_box(point, "top center"), label_box(point, "middle right")
    assert above.bottom == 100 - GAP_PX and above.left + above.right == 200, "centred above"
    assert right.left == 100 + GAP_PX and right.top + right.bottom == 200, "level, right"
    assert GAP_PX > MARKER_PX, "a label never covers its own marker"
    assert Box(0, 0, 10, 10).overlaps(Box(9, 9, 20, 20))
    assert not Box(0, 0, 10, 10).overlaps(Box(10, 0, 20, 10)), "touching is not overlapping"
    assert set(place_labels([point], 300, 300).values()) == {POSITIONS[0]}
    with pytest.raises(ValueError, match="unknown position 'centre'"):
        label_box(point, "centre")
