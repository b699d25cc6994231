"""Issue 22: the comparison's takeaway in one sentence per algorithm, and one card per
algorithm on a phone, computed from the numbers the table shows."""

from __future__ import annotations

from app import library
from app.compose import run_compare
from app.verdict import cards_html, verdict, verdicts, verdicts_markdown
from tests.app.conftest import DOC_A, DOC_B


def row(algorithm, ttft_ms, kl, first=True, text="Ada."):
    return {"algorithm": algorithm, "ttft_ms": ttft_ms, "first_token_kl": kl,
            "first_token_match": first, "text": text}


ROWS = [row("full_recompute", 800.0, 0.0), row("naive", 100.0, 0.294, first=False),
        row("legolink-16", 250.0, 0.021)]


def test_one_sentence_per_algorithm_from_its_numbers():
    assert verdicts(ROWS, 800.0) == [
        "full_recompute: the reference, every position computed (TTFT 800 ms).",
        "naive: 8.0x faster than full recompute, first token differs, KL 0.294 (no correction: "
        "the false sinks stay).",
        "legolink-16: 3.2x faster than full recompute, same first token, KL 0.021 (naive "
        "0.294: 14.0x lower).",
    ]


def test_edge_cases_say_what_the_numbers_allow():
    assert verdict(row("legolink-16", 1000.0, 0.5), 800.0, 0.25) == (
        "legolink-16: 1.2x slower than full recompute, same first token, KL 0.500 (naive "
        "0.250: 2.0x higher).")
    assert verdict(row("legolink-16", 200.0, 0.0), 800.0, 0.1) == (
        "legolink-16: 4.0x faster than full recompute, same first token, KL 0.000 (naive "
        "0.100: all of it removed).")
    assert verdict(row("cacheblend-15", 200.0, 0.0), 800.0, 0.0) == (
        "cacheblend-15: 4.0x faster than full recompute, same first token, KL 0.000 (naive's "
        "is 0 here: nothing to correct).")
    assert verdict(row("legolink-16", 200.0, 0.01), 800.0, None) == (
        "legolink-16: 4.0x faster than full recompute, same first token, KL 0.010.")
    assert verdict(row("legolink-16", 0.0, 0.01), 800.0, None).startswith(
        "legolink-16: TTFT not measured"), "a zero TTFT is no speed-up"


def test_markup_from_a_visitor_never_renders():
    hostile = [row("full_recompute", 800.0, 0.0, text="<img src=x onerror=alert(1)>"),
               row("naive", 100.0, 0.3, text="![t](http://e.example/x.png) <b>x</b>")]
    cards = cards_html(hostile, 800.0)
    assert "<img" not in cards and "<b>x" not in cards, "answers are escaped in the cards"
    assert "&lt;img src=x onerror=alert(1)&gt;" in cards
    assert cards.count('class="result-card"') == 2, "one card per algorithm"
    assert verdicts_markdown([], 0.0).startswith("*Run a comparison")
    assert "<" not in verdicts_markdown(hostile, 800.0).replace("&lt;", "")


def test_the_comparison_reports_its_verdicts(lab):
    keys = [library.compile_text(lab, "me", text, title)[1][0]["key"]
            for text, title in ((DOC_A, "a"), (DOC_B, "b"))]
    *_, shown, cards, report = list(run_compare(lab, "me", "Hi.", keys, "Who?",
                                                ["naive", "legolink"], 4, 0.2, 3))[-1]
    rows = report["results"]
    reference = report["verdicts"][0]
    assert [r["algorithm"] for r in rows] == ["naive", "legolink-4"]
    assert len(report["verdicts"]) == 2 and reference.startswith("naive: ")
    assert report["verdicts"][1].startswith("legolink-4: ")
    assert f"naive {rows[0]['first_token_kl']:.3f}" in report["verdicts"][1], (
        "legolink's sentence compares its KL with naive's of the same run")
    assert shown.count("\n- ") == 1 and cards.count('class="result-card"') == 2
