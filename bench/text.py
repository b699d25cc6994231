"""Seeded text for the speed benchmark: chunks of a chosen token count, fresh prefixes and
questions. Speed does not depend on what the text says, so without a data file the chunks are
pseudo-English from a fixed word list (a GPU machine without network needs no data)."""

from __future__ import annotations

import math
import random

from engine import chunk_token_ids

OVERHEAD_MARGIN = 16  # tokens the fresh prefix and question may add over the largest seen

_WORDS = (
    "the of and to in is was for on that with as by at from his her their an which had this "
    "city river team album film company school church station island village county player "
    "season war party state year years people time music history series book army "
    "first second new old great small large early late north south east west national "
    "known born founded built released played moved became served won lost wrote directed "
    "after before during between under over about into against while where when because "
    "government university museum railway library harbour bridge valley mountain market "
    "council festival language record district province empire kingdom republic "
    "captain singer writer painter scientist engineer doctor teacher farmer merchant"
).split()


def synthetic_text(rng: random.Random, num_words: int) -> str:
    """Sentences of 8 to 16 words from a fixed word list, capitalised, with full stops."""
    sentences, words = [], 0
    while words < num_words:
        n = rng.randint(8, 16)
        sentence = " ".join(rng.choice(_WORDS) for _ in range(n))
        sentences.append(sentence[0].upper() + sentence[1:] + ".")
        words += n
    return " ".join(sentences)


def text_of_tokens(tokenizer, num_tokens: int, rng: random.Random,
                   passages: list[str] | None = None) -> str:
    """Text that tokenizes to about `num_tokens` tokens: random passages (when given) or
    synthetic sentences, cut at a token boundary."""
    pieces: list[str] = []
    ids: list[int] = []
    while len(ids) < num_tokens:
        pieces.append(rng.choice(passages).strip() if passages else
                      synthetic_text(rng, num_tokens))
        ids = tokenizer("\n".join(pieces), add_special_tokens=False).input_ids
    return tokenizer.decode(ids[:num_tokens], skip_special_tokens=True).strip()


def fresh_prefix(rng: random.Random) -> str:
    """A system prompt of about 30 tokens that no earlier request has used."""
    return (f"You are assistant {rng.randrange(10**6)}, serving session "
            f"{rng.randrange(10**6)}. {synthetic_text(rng, 14)}")


def fresh_question(rng: random.Random) -> str:
    """A short question that no earlier request has asked."""
    a, b = rng.choice(_WORDS), rng.choice(_WORDS)
    return f"Question {rng.randrange(10**6)}: what do the documents say about {a} and {b}?"


def chunk_texts(tokenizer, num_tokens: int, num_chunks: int, rng: random.Random,
                passages: list[str] | None = None) -> list[str]:
    """`num_chunks` texts whose compiled token ids (`chunk_token_ids`: separator appended,
    retokenised) add up to at most `num_tokens`, as close to it as the cuts allow."""
    texts = [text_of_tokens(tokenizer, num_tokens // num_chunks, rng, passages)
             for _ in range(num_chunks)]
    for _ in range(8):  # retokenising moves a count by a token or two: trim the last text
        excess = sum(len(chunk_token_ids(tokenizer, t)) for t in texts) - num_tokens
        if excess <= 0:
            break
        ids = tokenizer(texts[-1], add_special_tokens=False).input_ids
        texts[-1] = tokenizer.decode(ids[:max(1, len(ids) - excess)],
                                     skip_special_tokens=True).strip()
    return texts


def sweep_budget(length: int, overhead: int, chunk_tokens: int) -> tuple[int, int]:
    """Tokens of chunk text for a sweep length, and in how many chunks: the prompt plus one
    new token fits `length` whatever a fresh prefix and question add (`overhead`: the most
    seen, plus a margin)."""
    budget = max(length - 1 - overhead - OVERHEAD_MARGIN, 1)
    return budget, max(1, math.ceil(budget / chunk_tokens))
