"""User-derived text shown safely: Markdown, HTML and Plotly labels."""

from __future__ import annotations

import pytest

from app.render import answer_diff_html, html_text, md
from visualize.style import plot_text, token_label


@pytest.mark.parametrize(("text", "forbidden"), [
    ("<img src=http://evil.example/a.png>", ["<img", "http:"]),
    ("![](http://evil.example/x.png)", ["![", "](", "http:"]),
    ("[click](http://evil.example)", ["[click]", "http:"]),
    ("<a href=http://evil.example>x</a>", ["<a", "http:"]),
    ("see www.evil.example or me@evil.example", ["www.", "@"]),
    ("$$\\frac{1}{2}$$", ["$"]),
    ("# heading\n* item", ["\n", " # ", " * "]),
])
def test_md_leaves_nothing_a_renderer_would_act_on(text, forbidden):
    shown = md(text)
    for piece in forbidden:
        assert piece not in shown, (piece, shown)


def test_md_keeps_plain_text_readable():
    assert md("Alder report 2031") == "Alder report 2031"
    assert md("a_b") == "a\\_b"


def test_html_and_plotly_text():
    assert html_text("<b>\"x\"</b>") == "&lt;b&gt;&quot;x&quot;&lt;/b&gt;"
    # Plotly shows &quot; literally: quotes stay, tags do not.
    assert plot_text('<a href="x">"q"</a>') == '&lt;a href="x"&gt;"q"&lt;/a&gt;'
    assert token_label(' "') == '·"'  # the old label showed ·&quot;


def test_answer_diff_marks_differing_tokens_and_escapes_them():
    html = answer_diff_html([("naive", ["<b>", "ok"], [True, False])])
    assert "<span class='tok diff'>&lt;b&gt;</span><span class='tok'>ok</span>" in html
    assert "<b>" not in html.replace("<span class='tok diff'>marked</span>", "")
