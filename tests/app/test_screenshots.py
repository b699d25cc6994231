"""The README's screenshots, retaken on the bundled SmolLM2 in Chromium: the Start tab with the
guided story, the example on the Compose tab, its attention on the Inspect tab, and a phone
(400 px) where every tab is reachable and no table header is narrower than its longest word."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from app.lab import Lab
from app.limits import AppLimits
from app.start import first_story
from engine import Engine
from tests.app import pages
from tests.app.conftest import serve

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
pytestmark = pytest.mark.slow

# For each header cell: its width, and the width of its longest word in the cell's own font.
HEADER_FIT = """(id) => [...document.querySelectorAll(`#${id} th`)].map(th => {
  const span = th.querySelector('span.header') || th;
  const font = getComputedStyle(span).font;
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = font;
  const words = (th.title || span.innerText).split(/\\s+/);
  const widest = Math.max(...words.map(w => ctx.measureText(w).width));
  return [th.title, th.getBoundingClientRect().width, widest];
})"""
# Plot titles whose right end lies beyond their plot's right edge (clipped on a phone).
CLIPPED_TITLES = """() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(plot => {
  const right = plot.getBoundingClientRect().right;
  return [...plot.querySelectorAll('.gtitle')].filter(t => t.getBoundingClientRect().right >
    right + 1).map(t => t.textContent);
})"""


@pytest.fixture(scope="module")
def served(smollm2_engine, tmp_path_factory):
    engine = Engine(replace(smollm2_engine.config, cache_dir=str(tmp_path_factory.mktemp("s"))),
                    model=smollm2_engine.model)
    # The example's five runs, estimated on a machine busy with other work, may pass the
    # public minute per call (tests/app/test_queue.py tests that bound): not this test's point.
    lab = Lab.open(engine, AppLimits(max_call_s=3600.0))
    lab.story = first_story(lab)
    demo, url = serve(lab)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield lab, url
    finally:
        demo.close()


def check_headers(page, table: str) -> None:
    """No header of the (visible) table is narrower than its longest word."""
    cells = page.evaluate(HEADER_FIT, table)
    assert cells
    for header, width, word in cells:
        assert width >= word, (f"{table}: header {header!r} is {width:.0f} px, narrower than "
                               f"its longest word ({word:.0f} px)")


def run_example(page) -> None:
    pages.open_tab(page, "Compose")
    page.locator("#run-example").click()
    pages.wait_count(page, "#ttft-plot .bars .point", 5)
    pages.wait_unlocked(page)
    # one verdict per algorithm at every width (a phone hides the table: its rows are not drawn)
    assert pages.count(page, "#verdicts li") == 5
    pages.close_toasts(page)


def test_desktop_screenshots(browser, served):
    _, url = served
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(url)
        page.locator("#story-plot .bars .point").first.wait_for()  # results on the first page
        page.wait_for_timeout(500)  # let Plotly finish drawing
        page.screenshot(path=str(SCREENSHOTS / "start.png"), full_page=True)
        run_example(page)
        page.screenshot(path=str(SCREENSHOTS / "compose.png"), full_page=True)

        page.locator("#to-inspect").click()
        pages.wait_count(page, "#heatmap-plot .hm", 2)
        pages.wait_unlocked(page)
        summary = page.locator("#inspect-summary").inner_text()
        masses = dict(re.findall(r"(naive|legolink-16|full recompute) ([0-9]+\.[0-9]+)", summary))
        naive, lego = float(masses["naive"]), float(masses["legolink-16"])
        assert naive > 5 * lego, summary  # the false sinks of naive linking
        assert "Naive linking puts" in summary and "the false sinks" in summary
        pages.close_toasts(page)
        page.wait_for_timeout(500)
        page.screenshot(path=str(SCREENSHOTS / "inspect.png"), full_page=True)
    finally:
        context.close()
    for name in ("start", "compose", "inspect"):
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 50_000


def test_a_phone_reaches_every_tab_and_reads_the_results(browser, served):
    _, url = served
    context = browser.new_context(viewport={"width": 400, "height": 860}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto(url)
        page.locator("#story-plot .bars .point").first.wait_for()
        tabs = page.get_by_role("tab")
        assert tabs.all_inner_texts() == ["Start", "Library", "Compose", "Inspect",
                                          "Benchmark"]  # none hidden behind a "⋯" menu
        assert not page.get_by_role("button", name="More tabs").is_visible()
        check_headers(page, "story-table")
        assert page.evaluate(CLIPPED_TITLES) == []
        run_example(page)
        cards = page.locator("#result-cards .result-card")  # the wide table gives way on a phone
        assert cards.count() == 5 and cards.first.is_visible()
        assert not page.locator("#results-table").is_visible()
        assert page.evaluate(CLIPPED_TITLES) == []
        page.screenshot(path=str(SCREENSHOTS / "phone.png"), full_page=True)
    finally:
        context.close()
    assert (SCREENSHOTS / "phone.png").stat().st_size > 50_000
