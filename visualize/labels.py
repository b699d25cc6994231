"""Point labels that never overlap, on a figure whose width the page decides.

The rule: a label is written beside its point only where its box, estimated at the narrowest
figure a page draws (a phone's, PHONE_FIGURE_PX), overlaps no other label, no marker and stays
inside the panel; otherwise it is left off the plot (the legend names every setting and the
hover names each point, so nothing is lost). Why the narrowest width is enough: the figure's
height is fixed and its width only grows from there, so two boxes apart on a phone are further
apart on a desktop (a label's size in pixels does not change with the width)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["POSITIONS", "Box", "Point", "label_box", "marker_box", "place_labels"]

PHONE_FIGURE_PX = 296  # a Plot's width in a 360 px phone's page (400 px gives 336, measured)
CHAR_PX = 6.4  # average width of a character at LABEL_FONT_PX (DejaVu Sans, the widest seen)
LABEL_FONT_PX = 10
LINE_PX = 14  # a label's height
MARKER_PX = 6.5  # a marker's radius (size 11 plus its white line), with a pixel to spare
# Room kept between a label and any other point, so that no label sits where it could be read
# as its neighbour's.
CLEAR_PX = 4.0
# Plotly's offset of a point's text from its centre, each way the position names (plotly.js
# textPointPosition: the marker's radius / 0.8 + 1 = 7.9 px at size 11), rounded up.
GAP_PX = 8.0
# Plotly's text positions, in the order tried: above, below, right, left, then the corners.
POSITIONS = ("top center", "bottom center", "middle right", "middle left",
             "top right", "top left", "bottom right", "bottom left")


@dataclass(frozen=True)
class Point:
    """One labelled point, in pixels from its panel's top-left corner."""

    label: str
    x_px: float
    y_px: float


@dataclass(frozen=True)
class Box:
    """A rectangle in a panel's pixels (y grows downwards)."""

    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: Box) -> bool:
        return (self.left < other.right and other.left < self.right
                and self.top < other.bottom and other.top < self.bottom)

    def inside(self, width: float, height: float) -> bool:
        return self.left >= 0 and self.top >= 0 and self.right <= width and self.bottom <= height


def label_box(point: Point, position: str) -> Box:
    """The estimated box of `point`'s label written at `position` (one of POSITIONS)."""
    if position not in POSITIONS:
        raise ValueError(f"unknown position {position!r}: one of {POSITIONS}")
    width = CHAR_PX * len(point.label)
    vertical, horizontal = position.split()
    top = {"top": point.y_px - GAP_PX - LINE_PX, "middle": point.y_px - LINE_PX / 2,
           "bottom": point.y_px + GAP_PX}[vertical]
    left = {"left": point.x_px - GAP_PX - width, "center": point.x_px - width / 2,
            "right": point.x_px + GAP_PX}[horizontal]
    return Box(left, top, left + width, top + LINE_PX)


def marker_box(point: Point, clear_px: float = 0.0) -> Box:
    """A point's marker, widened by `clear_px` on every side."""
    r = MARKER_PX + clear_px
    return Box(point.x_px - r, point.y_px - r, point.x_px + r, point.y_px + r)


def place_labels(points: list[Point], width_px: float, height_px: float,
                 ) -> dict[str, str | None]:
    """Per label, the first of POSITIONS whose box stays inside the `width_px` x `height_px`
    panel, overlaps no label placed before it and keeps CLEAR_PX from every other marker (its
    own is GAP_PX away by construction), or None: left off the plot. Points are taken in the
    order given: put first those whose labels matter most."""
    taken: list[Box] = []
    chosen: dict[str, str | None] = {}
    for point in points:
        others = [marker_box(p, CLEAR_PX) for p in points if p is not point]
        chosen[point.label] = None
        for position in POSITIONS:
            box = label_box(point, position)
            if (box.inside(width_px, height_px) and not any(box.overlaps(m) for m in others)
                    and not any(box.overlaps(t) for t in taken)):
                chosen[point.label] = position
                taken.append(box)
                break
    return chosen
