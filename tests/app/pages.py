"""Helpers for the browser tests: what a visitor does on the page, and what it sees."""

from __future__ import annotations

RUN_TIMEOUT_MS = 240_000
MODEL_BUTTONS = ["#compile-files", "#compile-text", "#run-compare", "#run-example",
                 "#to-inspect", "#run-inspect", "#run-accuracy", "#run-speed", "#run-frontier",
                 "#run-story",
                 "#inspect-story"]


def count(page, selector: str) -> int:
    return page.locator(selector).count()


def wait_count(page, selector: str, expected: int) -> None:
    page.wait_for_function(f"document.querySelectorAll({selector!r}).length === {expected}",
                           timeout=RUN_TIMEOUT_MS)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def error_toast(page, text: str) -> None:
    """Wait for an error message box containing `text`, then close it."""
    toast = page.locator("[data-testid='toast-body']").filter(has_text=text).first
    toast.wait_for(timeout=RUN_TIMEOUT_MS)
    toast.locator("[data-testid='toast-close']").click()


def close_toasts(page) -> None:
    """Close the message boxes (before a screenshot)."""
    for close in page.locator("[data-testid='toast-close']").all():
        close.click()


def wait_unlocked(page) -> None:
    """Every model button enabled again (they are locked while a call runs)."""
    selectors = ", ".join(f"{s}:disabled" for s in MODEL_BUTTONS)
    page.wait_for_function(f"document.querySelectorAll({selectors!r}).length === 0",
                           timeout=RUN_TIMEOUT_MS)


def pick_chunks(page, titles: list[str]) -> None:
    """Choose chunks in the Compose tab's picker, in this order."""
    picker = page.locator("#chunk-picker input")
    for title in titles:
        picker.click()
        page.get_by_role("option").filter(has_text=title).first.click()
    page.keyboard.press("Escape")


def set_dropdown_text(page, elem_id: str, text: str) -> None:
    """Type a value of one's own into a dropdown that takes one (question boxes)."""
    box = page.locator(f"#{elem_id} input")
    box.fill(text)
    box.press("Enter")


def table_rows(page, elem_id: str) -> list[list[str]]:
    """The cells of a Dataframe's rows (its header row left out)."""
    texts = page.locator(f"#{elem_id} [role=row][aria-rowindex]").all_inner_texts()
    return [[cell.strip() for cell in text.split("\n") if cell.strip()] for text in texts[1:]]
