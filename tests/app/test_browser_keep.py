"""Issue 22 in a real browser, at 1440 and 400 px: a comparison kept as one HTML page (nothing
to keep says why; the page opens offline and reads on a phone), and a refused comparison
clears the previous result instead of leaving it under the message."""

from __future__ import annotations

import pytest

from app.keep import NOTHING_KEPT
from tests.app import pages
from tests.app.test_browser import visitor
from tests.app.test_browser_glance import run_compare, sideways

pytestmark = pytest.mark.slow


def keep_page(page) -> str:
    """Press Keep, wait for the file, read it as the browser would download it -> its HTML."""
    page.locator("#keep-compare").click()
    link = page.locator("#kept-file a").first
    link.wait_for(timeout=pages.RUN_TIMEOUT_MS)
    response = page.request.get(link.get_attribute("href"))
    assert response.ok, response.status
    return response.text()


def offline(browser, html: str, width: int):
    """The kept page opened with the network cut off -> (context, page)."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    context.set_offline(True)
    page = context.new_page()
    page.set_content(html, wait_until="load")
    return context, page


def test_keep_a_comparison_then_a_refusal_clears_it(browser, served, tmp_path):
    _, url = served
    context, page = visitor(browser, url, width=1440)
    try:
        pages.open_tab(page, "Compose")
        page.locator("#keep-compare").click()
        pages.error_toast(page, NOTHING_KEPT)  # a no-op says why
        shown = run_compare(page, tmp_path)
        html = keep_page(page)
        head, body = html.split("</head>", 1)
        assert head.count("<script>") == 1, "one copy of Plotly"
        assert body.count("<script>") == 2, "two figures"
        assert "<b>Question:</b> Who runs Birch Mills?" in body
        assert body.count("class=\"result-card\"") == shown
        kept, kept_page = offline(browser, html, 1440)
        try:
            assert kept_page.locator(".verdicts li").count() == shown
            assert kept_page.locator("table.results").is_visible()
            kept_page.wait_for_function(
                "document.querySelectorAll('.figure .main-svg').length >= 2")
        finally:
            kept.close()
        # A refused comparison replaces the result: no old table under its message.
        checked = page.locator("#compose-algorithms input:checked")
        while checked.count():
            checked.first.uncheck()
        page.locator("#run-compare").click()
        pages.error_toast(page, "choose at least one algorithm")
        pages.wait_unlocked(page)
        assert pages.table_rows(page, "results-table") == [], "the old rows stay"
        assert pages.count(page, "#verdicts li") == 0 and pages.count(page, ".result-card") == 0
        assert not page.locator("#kept-file").is_visible(), "the old file stays offered"
        page.locator("#keep-compare").click()
        pages.error_toast(page, NOTHING_KEPT)
    finally:
        context.close()


def test_a_phone_keeps_a_comparison_it_can_read(browser, served, tmp_path):
    _, url = served
    context, page = visitor(browser, url, width=400)
    try:
        shown = run_compare(page, tmp_path)
        html = keep_page(page)
        link = page.locator("#kept-file a").first.bounding_box()
        assert link["x"] >= 0 and link["x"] + link["width"] <= 400, "the file is off screen"
        assert sideways(page) <= 0
        pages.open_tab(page, "Library")  # another no-op says why, wherever the page scrolled
        page.locator("#evict").click()
        pages.error_toast(page, "choose one of your own chunks to evict first")
        assert not page.locator("#confirm-evict").is_visible(), "nothing to confirm"
    finally:
        context.close()
    kept, kept_page = offline(browser, html, 400)
    try:
        cards = kept_page.locator(".result-card")
        assert cards.count() == shown and cards.first.is_visible(), "one card per algorithm"
        assert not kept_page.locator("table.results").is_visible(), "the table gives way"
        for dd in kept_page.locator(".result-card dd").all():
            box = dd.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 400, dd.inner_text()
        kept_page.wait_for_function(
            "document.querySelectorAll('.figure .main-svg').length >= 2")
        assert kept_page.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth") <= 0
    finally:
        kept.close()
