"""Issue 22 in a real browser, at 1440 px and on a 400 px phone: Inspect from the story's
*Inspect the last request* names the story's request and says the model ran; a second press
of *Inspect attention* on the same request draws the kept attention without the model and
without joining the model's queue, and says so; a changed request runs the model again."""

from __future__ import annotations

import pytest

from tests.app import pages
from tests.app.test_browser import visitor

pytestmark = pytest.mark.slow


@pytest.fixture()
def counted(served):
    """(model inspections, admissions to the model's queue) of the served lab, counted as
    they happen (the engine's and the admission's own methods run)."""
    lab, _ = served
    seen = {"inspect": 0, "admit": 0}
    inspect, admit = lab.engine.inspect_request, lab.admission.admit

    def inspected(request):
        seen["inspect"] += 1
        return inspect(request)

    def admitted(session):
        seen["admit"] += 1
        return admit(session)
    lab.engine.inspect_request, lab.admission.admit = inspected, admitted
    try:
        yield seen
    finally:
        lab.engine.inspect_request, lab.admission.admit = inspect, admit


def header(page) -> str:
    return page.locator("#inspect-request").inner_text()


def wait_header(page, text: str) -> str:
    page.locator("#inspect-request").get_by_text(text).wait_for(timeout=pages.RUN_TIMEOUT_MS)
    pages.wait_unlocked(page)
    return header(page)


@pytest.mark.parametrize("width", [1440, 400])
def test_a_second_press_draws_the_kept_attention_without_the_model(browser, served, counted,
                                                                  width):
    _, url = served
    context, page = visitor(browser, url, width=width)
    try:
        pages.open_tab(page, "Start")
        page.locator("#inspect-story").click()
        pages.wait_count(page, "#heatmap-plot .hm", 2)  # naive and legolink
        first = wait_header(page, "The model ran this time")
        assert "Inspecting the story's request R4 (prefix 2, order 2)" in first, first
        assert counted["inspect"] == 3 and counted["admit"] == 1, counted
        assert page.locator("#inspect-instant").get_by_text("no model call").is_visible()

        page.locator("#run-inspect").click()
        again = wait_header(page, "No model run this time")
        assert "Inspecting the story's request R4 (prefix 2, order 2)" in again, again
        assert counted == {"inspect": 3, "admit": 1}, "the second press ran or queued the model"
        assert pages.count(page, "#heatmap-plot .hm") == 2, "the maps stay drawn"
        assert page.locator("[data-testid='toast-body']").count() == 0, "no message box"
        assert page.locator("#inspect-request").is_visible()

        page.get_by_text("minus full recompute").click()  # instant: a redraw
        page.locator("#heatmap-plot").get_by_text("naive (− full recompute)").wait_for()
        assert counted == {"inspect": 3, "admit": 1}

        for name in ("naive", "legolink"):  # the failure path: nothing to inspect
            page.locator("#inspect-algorithms").get_by_label(name, exact=True).uncheck()
        page.locator("#run-inspect").click()
        pages.error_toast(page, "choose at least one algorithm")
        pages.wait_unlocked(page)
        assert counted["inspect"] == 3, "a refused request ran the model"
        assert pages.count(page, "#heatmap-plot .hm") == 2, "the maps the header names stay"
    finally:
        context.close()


def test_a_changed_request_runs_the_model_again(browser, served, counted):
    _, url = served
    context, page = visitor(browser, url, width=1440)
    try:
        pages.open_tab(page, "Start")
        page.locator("#inspect-story").click()
        wait_header(page, "The model ran this time")
        pages.open_tab(page, "Compose")
        page.get_by_role("button", name="↻ Move first to end").click()  # not a story order
        pages.set_dropdown_text(page, "question", "Who keeps the boats?")
        pages.open_tab(page, "Inspect")
        page.locator("#run-inspect").click()
        changed = wait_header(page, "Inspecting the Compose tab's request")
        assert "question “Who keeps the boats?”" in changed, changed
        assert "The model ran this time" in changed, changed
        assert "The model ran this time: 3 runs" in changed, changed
        assert counted == {"inspect": 6, "admit": 2}, counted
    finally:
        context.close()
