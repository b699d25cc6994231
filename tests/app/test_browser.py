"""The app in a real browser: Debian's Chromium driven by Playwright for Python, on the tiny
model. Never `playwright install`: the browser is /usr/bin/chromium (the `chromium` package).
Each browser context is a visitor of its own (its own Gradio session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio_client import Client

from app.lab import Lab
from app.limits import AppLimits
from app.ui_compose import default_names
from tests.app import pages
from tests.app.conftest import CHROMIUM, CHROMIUM_ARGS, DOC_A, DOC_B, serve

pytestmark = pytest.mark.slow


def visitor(browser, url: str, width: int = 1400):
    """A new visitor: its own browser context (cookies, session) and page, loaded."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.goto(url)
    pages.open_tab(page, "Library")
    page.locator("#library-summary").get_by_text("Your library").wait_for()
    return context, page


def upload(page, path: Path, text: str) -> None:
    pages.open_tab(page, "Library")
    path.write_text(text)
    page.locator("#upload input[type=file]").set_input_files([str(path)])
    page.locator("#compile-files").click()
    page.locator("#library-status").get_by_text("1 document(s) into 1 chunk(s)").wait_for(
        timeout=pages.RUN_TIMEOUT_MS)
    # the status reads the same for every upload: wait for this file's row in the table
    page.locator("#library-table").get_by_text(path.name, exact=True).wait_for(
        timeout=pages.RUN_TIMEOUT_MS)
    pages.wait_unlocked(page)
    assert page.locator("#upload .file-preview").count() == 0, "the compiled files stay listed"


def library_titles(page) -> list[str]:
    pages.open_tab(page, "Library")
    return [row[0] for row in pages.table_rows(page, "library-table")]


def test_chromium_starts():
    """Fails loudly, with the reason, when the browser cannot start."""
    from playwright.sync_api import Error, sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as err:
            pytest.fail(f"Chromium at {CHROMIUM} could not start: {err}")
        page = browser.new_page()
        page.set_content("<p id='x'>ok</p>")
        assert page.evaluate("1 + 2") == 3
        assert page.inner_text("#x") == "ok"
        browser.close()


def test_upload_compile_compare_inspect(browser, served, tmp_path):
    from playwright.sync_api import expect

    _lab, url = served
    context, page = visitor(browser, url)
    try:
        upload(page, tmp_path / "alder.txt", DOC_A)
        upload(page, tmp_path / "birch.md", DOC_B)
        pages.open_tab(page, "Compose")  # the uploads are there: no Refresh needed
        pages.pick_chunks(page, ["birch.md", "alder.txt"])  # picked in this order = prompt order
        order = page.locator(".prose.order li")
        order.nth(1).wait_for()
        assert [order.nth(i).inner_text() for i in range(2)] == [
            f"birch.md ({len(DOC_B) + 2} tokens)", f"alder.txt ({len(DOC_A) + 2} tokens)"]
        pages.set_dropdown_text(page, "question", "Who runs Birch Mills?")
        run = page.locator("#run-compare")
        run.click()
        expect(run).to_be_disabled()  # no second run while this one is in progress
        shown = len(default_names())  # the default algorithms' names are checked at first
        pages.wait_count(page, "#ttft-plot .bars .point", shown)
        assert pages.count(page, "#results-table [role=row][aria-rowindex]") - 1 == shown
        assert pages.count(page, "#answers .diff-row") == shown
        pages.wait_unlocked(page)

        pages.open_tab(page, "Inspect")
        page.get_by_text("2 chunk(s) · question “Who runs Birch Mills?”").wait_for()
        layer = page.locator("#layer input[type=range]")
        expect(layer).to_be_disabled()  # "average layers" is ticked: the slider does not apply
        page.locator("#run-inspect").click()
        pages.wait_count(page, "#heatmap-plot .hm", 2)  # naive and legolink, side by side
        pages.wait_count(page, "#sinks-plot .bars .point", 4)  # 2 algorithms x 2 chunks
        page.locator("#all-layers input").uncheck()
        expect(layer).to_be_enabled()
        page.get_by_text("minus full recompute").click()  # the difference view, no model call
        page.locator("#heatmap-plot").get_by_text("naive (− full recompute)").wait_for()
    finally:
        context.close()


def test_a_page_load_shows_the_library_as_it_is_now(browser, served):
    """Issue 10: the Library table and the Compose picker showed the start-up snapshot. (What
    another visitor did with an example, its hits, is not shown: issue 19.)"""
    lab, url = served
    key = next(iter(lab.example_titles))
    client = Client(url, verbose=False)  # another visitor uses an example meanwhile
    client.predict("Hi.", [key], "Who?", ["naive"], 4, 0.2, 1, api_name="/run_compare")
    lab.engine.store.evict(key)  # and the store drops it (recompiled when next used)
    context, page = visitor(browser, url)
    try:
        rows = {row[-1]: row for row in pages.table_rows(page, "library-table")}
        assert rows[key][3] == "evicted" and rows[key][4] == "—"
        pages.open_tab(page, "Compose")
        page.locator("#chunk-picker input").click()
        assert page.get_by_role("option").count() == len(lab.example_titles)
    finally:
        context.close()


def test_two_visitors_cannot_see_or_clear_each_others_chunks(browser, served, tmp_path):
    _lab, url = served
    (ctx_a, a), (ctx_b, b) = visitor(browser, url), visitor(browser, url)
    try:
        upload(a, tmp_path / "alder.txt", DOC_A)
        upload(b, tmp_path / "birch.md", DOC_B)
        page_titles = {name: library_titles(p) for name, p in (("a", a), ("b", b))}
        assert "alder.txt" in page_titles["a"] and "birch.md" not in page_titles["a"]
        assert "birch.md" in page_titles["b"] and "alder.txt" not in page_titles["b"]
        pages.open_tab(b, "Compose")
        b.locator("#chunk-picker input").click()
        assert b.get_by_role("option").filter(has_text="alder.txt").count() == 0
        b.keyboard.press("Escape")

        pages.open_tab(a, "Library")
        a.locator("#clear").click()  # destructive: it asks first
        a.locator("#confirm-clear").get_by_text("Drop every chunk of yours?").wait_for()
        a.locator("#yes-clear").click()
        a.locator("#library-status").get_by_text("Cleared your 1 chunk(s)").wait_for()
        assert "alder.txt" not in library_titles(a)
        pages.open_tab(b, "Library")
        b.locator("#refresh").click()
        b.locator("#library-table").get_by_text("birch.md").wait_for()
        pages.open_tab(b, "Compose")
        pages.pick_chunks(b, ["birch.md"])
        b.locator("#run-compare").click()
        pages.wait_count(b, "#ttft-plot .bars .point", len(default_names()))
    finally:
        ctx_a.close()
        ctx_b.close()


def test_titles_never_become_markup(browser, served):
    """Issue 14: a title's <img> and ![](…) were fetched by the browser, <a> became a link."""
    _lab, url = served
    context, page = visitor(browser, url)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        pages.open_tab(page, "Library")
        page.get_by_text("…or paste text").click()
        title = (f"<img src={url}pixel-a.png> ![]({url}pixel-b.png) <a href='{url}x'>link</a>"
                 f" <b>bold</b>")
        page.get_by_role("textbox", name="Title").fill(title)
        page.get_by_role("textbox", name="Text").fill(DOC_A + " Injected.")
        page.locator("#compile-text").click()
        pages.wait_unlocked(page)
        page.wait_for_function("[...document.querySelectorAll('#library-table [role=row]')]"
                               ".some(r => r.innerText.includes('<img src='))")
        pages.open_tab(page, "Compose")
        pages.pick_chunks(page, ["<img src="])
        page.locator(".prose.order li").first.wait_for()
        assert "<img src=" in page.locator(".prose.order li").first.inner_text()
        page.locator("#run-compare").click()
        pages.wait_count(page, "#ttft-plot .bars .point", len(default_names()))
        assert page.locator("img[src*='pixel']").count() == 0
        assert page.locator(".prose a[href$='/x'], .prose b").count() == 0
        assert not [u for u in fetched if "pixel" in u]
    finally:
        context.close()


def test_a_page_whose_outputs_gradio_dropped_still_works(browser, engine, tmp_path):
    """With kept_outputs=1 the second visitor's page drops the first one's copy on the server
    (its updated chunk picker included); the first page composes with its own chunk as before,
    and the second still cannot see it."""
    lab = Lab.open(engine, AppLimits(kept_outputs=1))
    demo, url = serve(lab)
    (ctx_a, a) = visitor(browser, url)
    try:
        upload(a, tmp_path / "alder.txt", DOC_A)
        ctx_b, b = visitor(browser, url)
        try:
            assert "alder.txt" not in library_titles(b)
            assert len(demo.state_holder.session_data) == 1, "the first copy should be gone"
        finally:
            ctx_b.close()
        pages.open_tab(a, "Compose")
        pages.pick_chunks(a, ["alder.txt"])
        a.locator("#run-compare").click()
        shown = len(default_names())  # the default algorithms' names are checked at first
        pages.wait_count(a, "#ttft-plot .bars .point", shown)
        assert pages.count(a, "#answers .diff-row") == shown
        pages.wait_unlocked(a)
    finally:
        ctx_a.close()
        demo.close()


def test_visitor_strings_stay_text_in_every_output_and_message(browser, served):
    """Issue 19: the library table and the /compile_text reply carry raw titles, and error
    messages kept Markdown (chunk '![t](http://…)' is not in your library): none of them may
    run a script, fetch an image or make a link, in any output or message box."""
    _lab, url = served
    context, page = visitor(browser, url)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        pages.open_tab(page, "Library")
        page.get_by_text("…or paste text").click()
        title = f"<img src=x onerror=\"window.__xss=1\"> ![t]({url}pixel-c.png) **loud**"
        page.get_by_role("textbox", name="Title").fill(title)
        page.get_by_role("textbox", name="Text").fill(DOC_B + " Scripted.")
        page.locator("#compile-text").click()
        pages.wait_unlocked(page)
        page.wait_for_function("[...document.querySelectorAll('#library-table [role=row]')]"
                               ".some(r => r.innerText.includes('onerror='))")
        page.get_by_text("Compiled chunks (keys)").click()
        page.get_by_text("onerror=").first.wait_for()
        page.locator("#evict-pick input").click()
        page.get_by_role("option").filter(has_text="onerror=").first.wait_for()
        page.keyboard.press("Escape")
        pages.open_tab(page, "Compose")
        guess = f"![t]({url}pixel-d.png)"
        pages.set_dropdown_text(page, "chunk-picker", guess)
        page.locator("#run-compare").click()
        toast = page.locator("[data-testid='toast-body']").filter(has_text="not in your library")
        toast.first.wait_for(timeout=pages.RUN_TIMEOUT_MS)
        assert f"chunk '{guess}' is not in your library" in toast.first.inner_text()
        assert page.evaluate("window.__xss") is None, "a title ran a script"
        assert page.locator("img[src='x'], img[src*='pixel'], strong:has-text('loud')").count() == 0
        assert page.locator("a[href*='pixel']").count() == 0
        assert not [u for u in fetched if "pixel" in u], "a visitor's string fetched an image"
    finally:
        context.close()
