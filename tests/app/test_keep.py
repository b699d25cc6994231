"""A comparison kept as one self-contained HTML page: request, verdicts, table, answers and
figures, every visitor string escaped (a hostile title, prefix and question), the figures'
JSON safe inside <script>, one copy of Plotly, nothing fetched; nothing kept says why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import gradio as gr
import pytest

from app import compose, keep, library
from app.keep import Kept
from tests.app.conftest import DOC_A, DOC_B

HOSTILE = "<img src=x onerror=alert(1)></script><script>alert(2)</script>"
ALGORITHMS = ["full_recompute", "naive", "legolink"]


def compare_kept(lab, session: str, prefix: str, keys: list[str], question: str):
    """Every output of a kept comparison, as the page's handler yields them."""
    return list(keep.keeping(compose.run_compare)(lab, session, prefix, keys, question,
                                                  ALGORITHMS, 4, 0.2, 3))


def test_the_page_holds_the_comparison_escaped(lab):
    keys = [library.compile_text(lab, "s1", DOC_A, "T" + HOSTILE)[1][0]["key"],
            library.compile_text(lab, "s1", DOC_B, "birch")[1][0]["key"]]
    steps = compare_kept(lab, "s1", "P" + HOSTILE, keys, "Q" + HOSTILE)
    assert all(isinstance(s[-1], dict) and "results" not in s[-1] for s in steps[:-1]), \
        "only the last output keeps the comparison"
    kept = steps[-1][-1]
    assert isinstance(kept, Kept) and kept.report is steps[-1][7], "the report shown is kept"
    page = Path(keep.download_comparison(lab, "s1", kept)).read_text(encoding="utf-8")
    head, body = page.split("</head>", 1)
    assert head.count("<script>") == 1 and "Plotly" in head, "one copy of Plotly, in the head"
    assert "<img" not in body and "alert(2)</script>" not in body, "a visitor string is markup"
    assert body.count("<script>") == body.count("</script>") == 2, "the two figures' scripts"
    shown = "&lt;img src=x onerror=alert(1)&gt;&lt;/script&gt;"
    assert f"<b>Prefix:</b> P{shown}" in body and f"<b>Question:</b> Q{shown}" in body
    assert f"<li>T{shown}" in body, "the chunk's title, escaped"
    for sentence in kept.report["verdicts"]:
        assert f"<li>{sentence.replace(chr(39), '&#x27;')}</li>" in body, sentence
    for row in kept.report["results"]:
        assert f"<div class=\"card-title\">{row['algorithm']}</div>" in body, row["algorithm"]
    assert body.count("<tr>") == 1 + len(ALGORITHMS), "a header and one row per algorithm"
    assert kept.answers_html in body, "the answers token by token, as the page shows them"
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", page), \
        "nothing is fetched: the page opens offline"
    for number, figure in enumerate(kept.figures):
        data = re.search(rf"var f=(.*?);Plotly.newPlot\('figure-{number}'", body).group(1)
        assert "<" not in data and ">" not in data, "no markup inside a script"
        assert json.loads(data)["data"] == json.loads(figure)["data"], "the figure unchanged"
    again = Path(keep.download_comparison(lab, "s1", kept)).read_text(encoding="utf-8")
    assert again == page, "a redraw of the same comparison writes the same bytes"


def test_a_title_closing_the_script_stays_inside_the_json():
    figure = json.dumps({"data": [{"x": ["</script><b>x</b>", "a & b", "\u2028"]}],
                         "layout": {"title": {"text": "</SCRIPT>"}}})
    safe = keep.safe_json(figure)
    assert "<" not in safe and ">" not in safe and "&" not in safe and "\u2028" not in safe
    assert json.loads(safe) == json.loads(figure), "the same figure once parsed"


def test_nothing_to_download_says_why(lab):
    for kept in (None, "forged", Kept({"results": []}, "", (), "now")):
        with pytest.raises(gr.Error, match="nothing to download yet: run a comparison first"):
            keep.download_comparison(lab, "s1", kept)
