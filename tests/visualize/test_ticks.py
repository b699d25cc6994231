"""Log axes with readable ticks: 1-2-5 steps written in full, never Plotly's bare digits."""

from __future__ import annotations

import math

from visualize.ticks import log_axis, log_ticks, tick_text


def test_ticks_are_one_two_five_steps_written_in_full():
    assert log_ticks([239.0, 485.0, 980.0]) == ([200.0, 500.0, 1000.0], ["200", "500", "1,000"])
    assert log_ticks([1200.0, 3100.0]) == ([1000.0, 2000.0, 5000.0], ["1,000", "2,000", "5,000"])
    assert log_ticks([0.05, 0.3]) == ([0.05, 0.1, 0.2, 0.5], ["0.05", "0.1", "0.2", "0.5"])
    assert log_ticks([0.0, -1.0, math.inf]) == ([], []), "nothing positive and finite"
    assert tick_text(12_500.0) == "12,500"


def test_the_axis_range_holds_every_tick_and_every_value():
    values = [90.0, 1700.0]
    axis = log_axis(values)
    assert axis["type"] == "log"
    assert axis["ticktext"] == ["50", "100", "200", "500", "1,000", "2,000"]
    low, high = axis["range"]
    assert low < math.log10(50) and math.log10(2000) < high, "every tick inside the range"
    assert all(low < math.log10(v) < high for v in values), "every point inside the range"
    assert log_axis([]) == {"type": "log"}, "no values: Plotly's own log axis"
