"""Issue 22's benchmark figures in Chromium: on a 400 px phone a speed sweep's figure fits
the page (no sideways scroll), its title sits below Plotly's toolbar and its noise note shows;
the frontier's labels, drawn by Plotly itself, overlap no other label and no other point at a
phone's width or a desktop's, and its legend stays inside the figure."""

from __future__ import annotations

import pytest

from tests.app import pages
from tests.app.test_browser import visitor
from tests.visualize.test_labels import FRONTIER
from visualize.frontier import frontier_figure
from visualize.labels import PHONE_FIGURE_PX

pytestmark = pytest.mark.slow

BOX = "e => {const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]}"


def boxes(page, selector: str) -> list[list[float]]:
    return page.eval_on_selector_all(selector, f"all => all.map({BOX})")


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def title_clear_of_toolbar(page, plot: str) -> None:
    page.locator(f"{plot} .nsewdrag").first.hover()  # the toolbar shows on hover
    (toolbar,) = boxes(page, f"{plot} .modebar")
    for title in boxes(page, f"{plot} .gtitle, {plot} .gtitle-subtitle"):
        assert not overlap(title, toolbar), f"title {title} under the toolbar {toolbar}"


def test_a_phone_sees_the_whole_speed_figure_and_its_noise_note(browser, served):
    _, url = served
    context, page = visitor(browser, url, width=400)
    try:
        pages.open_tab(page, "Benchmark")
        algorithms = page.locator("#bench-algorithms")
        for box in algorithms.get_by_role("checkbox").all():
            box.uncheck()
        algorithms.get_by_label("naive", exact=True).check()
        page.locator("#lengths").get_by_label("512", exact=True).uncheck()  # the smallest run
        page.locator("#run-speed").click()
        page.locator("#bench-summary").get_by_text("Medians of 1 repeat(s)").wait_for(
            timeout=pages.RUN_TIMEOUT_MS)
        plot = "#bench-figure .js-plotly-plot"
        page.locator(f"{plot} .gtitle-subtitle").get_by_text("per point").wait_for()
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") == 0
        (figure,) = boxes(page, f"{plot} .main-svg >> nth=0")
        assert figure[0] >= 0 and figure[2] <= 400, f"the figure {figure} leaves the page"
        assert figure[2] - figure[0] >= PHONE_FIGURE_PX, "labels are placed for this width"
        title_clear_of_toolbar(page, plot)
        for title in boxes(page, f"{plot} .gtitle, {plot} .gtitle-subtitle"):
            assert title[2] <= figure[2], f"the title {title} cut at the figure's edge"
        (legend,) = boxes(page, f"{plot} .legend")
        assert legend[3] <= figure[3] and legend[2] <= figure[2], "the legend inside"
        summary = page.locator("#bench-summary").inner_text()
        assert "rerun with 3 or more repeats" in summary and "measured (asked)" in summary
    finally:
        context.close()


@pytest.mark.parametrize("width", [PHONE_FIGURE_PX, 1440])
def test_frontier_labels_as_plotly_draws_them(browser, width):
    page = browser.new_page(viewport={"width": width, "height": 1000})
    try:
        html = frontier_figure(FRONTIER).to_html(include_plotlyjs=True,
                                                 config={"responsive": True})
        page.set_content(html, timeout=pages.RUN_TIMEOUT_MS)  # 4.6 MB of plotly.js inline
        page.locator(".textpoint").first.wait_for(timeout=pages.RUN_TIMEOUT_MS)
        labels = page.eval_on_selector_all(
            ".textpoint", f"all => all.map(e => [e.textContent, ({BOX})(e)])")
        points = boxes(page, ".scatterlayer .point")
        assert len(labels) >= 8 and len(points) == len(FRONTIER["lengths"]["6"]["algorithms"])
        for i, (name, box) in enumerate(labels):
            for other, other_box in labels[i + 1:]:
                assert not overlap(box, other_box), f"{name} and {other} overlap at {width}"
            covered = [p for p in points if overlap(box, p)]
            assert not covered, f"{name} covers a point at {width}: {box} {covered}"
        (figure,) = boxes(page, ".main-svg >> nth=0")
        (legend,) = boxes(page, ".legend")
        assert legend[3] <= figure[3], "the legend inside the figure"
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        title_clear_of_toolbar(page, ".js-plotly-plot")
    finally:
        page.close()
