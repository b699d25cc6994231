"""Benchmark figures one can trust: lengths as measured and as asked, a noise note under
fewer than 3 repeats, an explanation when the reference scores 0; the same notes the page
shows under the figure."""

from __future__ import annotations

from tests.visualize.test_bench import ACCURACY, SPEED, block
from visualize.bench import score_vs_ttft, ttft_vs_length
from visualize.frontier import frontier_figure
from visualize.notes import noise_note, wrap, zero_score_note

NOISE = ("1 repeat(s) per point: timings this close are noise; rerun with 3 or more repeats "
         "before reading an order into them.")
ZERO = ("Task score 0 for full recompute too: this model cannot answer these questions, so "
        "the score tells the algorithms apart nowhere; read first-token KL and agreement with "
        "full recompute instead.")


def notes(fig) -> str:
    """The figure's notes, one text (they are written under its title)."""
    return (fig.layout.title.subtitle.text or "").replace("<br>", " ")


def test_the_notes_and_when_they_are_due():
    assert noise_note(1) == NOISE and noise_note(3) == "" and noise_note(None) == ""
    assert noise_note(2, "example").startswith("2 example(s) per point")
    assert zero_score_note(ACCURACY["algorithms"]) == "", "the reference scored 0.5"
    assert zero_score_note({"naive": {"score": 0.0}}) == "", "no reference, nothing to explain"
    assert zero_score_note({"full_recompute": {"score": 0.0}}) == ZERO
    lines = wrap(ZERO)
    assert " ".join(lines) == ZERO and max(map(len, lines)) <= 52, "a phone's width"


def test_speed_shows_lengths_as_measured_and_asked_and_says_when_it_is_noise():
    fig = ttft_vs_length(SPEED | {"repeats": 1})
    assert list(fig.layout.xaxis.ticktext) == ["520<br>(512)", "1,030<br>(1024)"]
    assert fig.layout.xaxis.title.text == "context tokens: measured (asked)"
    assert list(fig.layout.yaxis.ticktext) == ["50", "100", "200", "500", "1,000", "2,000"]
    assert notes(fig) == NOISE
    exact = ttft_vs_length({"repeats": 3, "sweep": {"512": block(512.0, {"naive": 9.0}, 8.0)}})
    assert list(exact.layout.xaxis.ticktext) == ["512"] and notes(exact) == ""


def test_a_zero_score_for_the_reference_is_explained():
    assert notes(score_vs_ttft(ACCURACY)) == ""
    assert list(score_vs_ttft(ACCURACY).layout.xaxis.ticktext) == ["200", "500", "1,000",
                                                                   "2,000"]
    zero = {name: row | {"score": 0.0} for name, row in ACCURACY["algorithms"].items()}
    assert notes(score_vs_ttft(ACCURACY | {"algorithms": zero})) == ZERO
    frontier = {"lengths": {"2": {"num_chunks": 2, "context_tokens_mean": 300.0, "n": 2,
                                  "algorithms": zero}}}
    assert notes(frontier_figure(frontier)) == noise_note(2, "example") + " " + ZERO
    assert notes(frontier_figure(frontier | {"lengths": {"2": {
        **frontier["lengths"]["2"], "n": 5, "algorithms": ACCURACY["algorithms"]}}})) == ""
