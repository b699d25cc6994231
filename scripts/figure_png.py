"""Render a saved Plotly figure (a self-contained .html from bench/report.py) to a PNG for the
README, in the Chromium the browser tests use (Debian's, never a downloaded one).

    .venv/bin/python scripts/figure_png.py results/frontier21/frontier.html docs/figures/x.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": args.width, "height": 800})
        page.goto(args.html.resolve().as_uri())
        page.wait_for_selector(".main-svg")
        page.locator(".plotly-graph-div").first.screenshot(path=str(args.png))
        browser.close()
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
