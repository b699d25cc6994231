"""Issue 22 in a real browser: the comparison's verdicts above the table at 1440 px, and on a
400 px phone one card per algorithm whose numbers are visible without sideways scrolling."""

from __future__ import annotations

import pytest

from app.ui_compose import default_names
from tests.app import pages
from tests.app.conftest import DOC_A, DOC_B
from tests.app.test_browser import upload, visitor

pytestmark = pytest.mark.slow


def run_compare(page, tmp_path) -> int:
    """Two uploaded documents compared under the default algorithms -> how many are shown."""
    upload(page, tmp_path / "alder.txt", DOC_A)
    upload(page, tmp_path / "birch.md", DOC_B)
    pages.open_tab(page, "Compose")
    pages.pick_chunks(page, ["birch.md", "alder.txt"])
    pages.set_dropdown_text(page, "question", "Who runs Birch Mills?")
    page.locator("#run-compare").click()
    shown = len(default_names())
    pages.wait_count(page, "#ttft-plot .bars .point", shown)
    pages.wait_unlocked(page)
    return shown


def sideways(page) -> int:
    """How far the page scrolls sideways (0: it fits its width)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def test_verdicts_sit_above_the_wide_table(browser, served, tmp_path):
    _, url = served
    context, page = visitor(browser, url, width=1440)
    try:
        shown = run_compare(page, tmp_path)
        assert pages.count(page, "#verdicts li") == shown, "one sentence per algorithm"
        first = page.locator("#verdicts li").nth(1).inner_text()
        assert "than full recompute" in first and "KL" in first, first
        assert page.locator("#results-table").is_visible()
        assert not page.locator("#result-cards").is_visible(), "no cards on a wide screen"
    finally:
        context.close()


def test_a_phone_reads_one_card_per_algorithm(browser, served, tmp_path):
    _, url = served
    context, page = visitor(browser, url, width=400)
    try:
        shown = run_compare(page, tmp_path)
        cards = page.locator("#result-cards .result-card")
        assert cards.count() == shown
        assert not page.locator("#results-table").is_visible(), "the wide table gives way"
        for i in range(shown):
            card = cards.nth(i)
            for field in ("KL", "TTFT", "speed", "match"):
                value = card.locator(f"dt:text-is('{field}') + dd")
                assert value.is_visible(), f"card {i}: {field}"
                box = value.bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= 400, (
                    f"card {i}: {field} is outside the screen at x={box['x']}")
        assert sideways(page) <= 0, "the Compose tab scrolls sideways on a phone"
    finally:
        context.close()
