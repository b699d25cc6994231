"""The app in a real browser: Debian's Chromium driven by Playwright for Python.

Never `playwright install`: the browser is /usr/bin/chromium (the `chromium` package). The
flow test runs on the tiny model; the screenshot test on the bundled SmolLM2, so that the
pictures in the README show real answers and a real attention sink.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from app.examples import compile_examples
from app.ui import build_ui, launch
from engine import Engine
from tests.app.conftest import DOC_A, DOC_B, free_port

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
RUN_TIMEOUT_MS = 240_000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def serve(engine: Engine):
    demo = build_ui(engine)
    port = free_port()
    launch(demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def count(page, selector: str) -> int:
    return page.locator(selector).count()


def wait_count(page, selector: str, expected: int) -> None:
    page.wait_for_function(f"document.querySelectorAll({selector!r}).length === {expected}",
                           timeout=RUN_TIMEOUT_MS)


def test_chromium_starts():
    """Fails loudly, with the reason, when the browser cannot start."""
    from playwright.sync_api import Error, sync_playwright

    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: apt-get install chromium"
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Error as err:
            pytest.fail(f"Chromium at {CHROMIUM} could not start: {err}")
        page = browser.new_page()
        page.set_content("<p id='x'>ok</p>")
        assert page.evaluate("1 + 2") == 3
        assert page.inner_text("#x") == "ok"
        browser.close()


def test_upload_compile_compare_inspect(browser, tiny_engine_config, tiny_model, tmp_path):
    from playwright.sync_api import expect

    engine = Engine(replace(tiny_engine_config, cache_dir=str(tmp_path / "cache")),
                    model=tiny_model)
    demo, url = serve(engine)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        (tmp_path / "alder.txt").write_text(DOC_A)
        (tmp_path / "birch.md").write_text(DOC_B)
        page.locator("#upload input[type=file]").set_input_files(
            [str(tmp_path / "alder.txt"), str(tmp_path / "birch.md")])
        page.get_by_role("button", name="Chunk & compile files").click()
        page.locator("#library-status").get_by_text("2 new, 0 already in the store").wait_for()
        assert engine.store.stats().num_compiled == 2

        page.get_by_role("tab", name="Compose").click()
        picker = page.locator("#chunk-picker input")
        for title in ("birch.md", "alder.txt"):  # picked in this order = prompt order
            picker.click()
            page.get_by_role("option").filter(has_text=title).first.click()
        page.keyboard.press("Escape")
        order = page.locator(".prose.order li")
        order.nth(1).wait_for()
        assert [order.nth(i).inner_text() for i in range(2)] == [
            f"birch.md ({len(DOC_B) + 2} tokens)", f"alder.txt ({len(DOC_A) + 2} tokens)"]
        question = page.get_by_role("combobox", name="Question")
        question.fill("Who runs Birch Mills?")  # a question of one's own, not a preset
        question.press("Enter")
        run = page.locator("#run-compare")
        run.click()
        expect(run).to_be_disabled()  # no second run while this one is in progress
        wait_count(page, "#ttft-plot .bars .point", 3)  # full_recompute, naive, legolink
        assert count(page, "#results-table [role=row][aria-rowindex]") - 1 == 3
        assert count(page, "#mask-plot .hm") == 1
        expect(run).to_be_enabled()
        chunks = [c.title for c in engine.store.stats().chunks]
        assert sorted(chunks) == ["alder.txt", "birch.md"]

        page.get_by_role("tab", name="Inspect").click()
        page.get_by_text("2 chunk(s) · question “Who runs Birch Mills?”").wait_for()
        page.locator("#run-inspect").click()
        wait_count(page, "#heatmap-plot .hm", 2)  # naive and legolink, side by side
        wait_count(page, "#sinks-plot .bars .point", 4)  # 2 algorithms x 2 chunks
    finally:
        demo.close()


def test_example_screenshots_on_smollm2(browser, smollm2_engine):
    """One click on the example: answers, TTFT bars, the mask strip, then the Inspect tab's
    maps, where naive linking shows the false sinks that LegoLink removes."""
    compile_examples(smollm2_engine)
    demo, url = serve(smollm2_engine)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Compose").click()
        page.get_by_role("button", name="Example: show the sink effect").click()
        wait_count(page, "#ttft-plot .bars .point", 5)
        assert count(page, "#results-table [role=row][aria-rowindex]") - 1 == 5
        page.wait_for_function("!document.querySelector('#run-compare').disabled",
                               timeout=RUN_TIMEOUT_MS)  # the chained inspect has finished too
        page.screenshot(path=str(SCREENSHOTS / "compose.png"), full_page=True)

        page.get_by_role("tab", name="Inspect").click()
        wait_count(page, "#heatmap-plot .hm", 2)
        summary = page.get_by_text("Mean attention mass on the first").inner_text()
        masses = re.findall(r"(?:naive|legolink-16) ([0-9]+\.[0-9]+)", summary)
        naive, lego = (float(v) for v in masses)
        assert naive > 5 * lego, summary  # the false sinks of naive linking
        page.wait_for_timeout(500)  # let Plotly finish drawing
        page.screenshot(path=str(SCREENSHOTS / "inspect.png"), full_page=True)
    finally:
        demo.close()
    assert (SCREENSHOTS / "compose.png").stat().st_size > 50_000
    assert (SCREENSHOTS / "inspect.png").stat().st_size > 50_000
