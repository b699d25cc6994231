"""Task metrics on hand-checked examples: SQuAD F1 / EM, Rouge-L, label accuracy."""

from __future__ import annotations

import pytest

from bench.metrics import (
    f1_score,
    label_accuracy,
    normalize_answer,
    rouge_l,
    score,
)


def test_normalize_answer_follows_squad():
    # lower -> drop punctuation -> drop articles -> collapse whitespace
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("Theatre") == "theatre", "articles go only as whole words"


def test_f1_partial_overlap():
    # "the cat sat" -> [cat, sat]; "a cat sat down" -> [cat, sat, down]; 2 in common.
    # precision 2/2 = 1, recall 2/3, F1 = 2 * 1 * 2/3 / (1 + 2/3) = (4/3) / (5/3) = 0.8
    assert f1_score("the cat sat", ["a cat sat down"]) == pytest.approx(0.8)


def test_f1_counts_repeated_tokens_once_per_match():
    # [cat, cat, cat] vs [cat]: 1 in common; precision 1/3, recall 1, F1 = (2/3) / (4/3) = 0.5
    assert f1_score("cat cat cat", ["cat"]) == pytest.approx(0.5)


def test_f1_is_the_best_over_golds_and_zero_without_overlap():
    assert f1_score("the cat sat", ["dog", "a cat sat down"]) == pytest.approx(0.8)
    assert f1_score("a dog barked", ["the cat sat"]) == 0.0
    # Both empty after normalisation agree (SQuAD v2); empty against words does not.
    assert f1_score("The.", ["a"]) == 1.0
    assert f1_score("", ["Paris"]) == 0.0


def test_rouge_l_hand_computed():
    # rouge-score keeps articles: [the, cat, sat] vs [a, cat, sat, down]; LCS = [cat, sat].
    # precision 2/3, recall 2/4, F = 2 * (2/3)(1/2) / (2/3 + 1/2) = (2/3) / (7/6) = 4/7
    assert rouge_l("the cat sat", ["a cat sat down"]) == pytest.approx(4 / 7)
    assert rouge_l("The cat sat.", ["nothing alike", "the cat sat"]) == pytest.approx(1.0)
    assert rouge_l("", ["the cat sat"]) == 0.0


def test_label_accuracy_rule():
    assert label_accuracy("Positive.", ["positive"]) == 1.0
    assert label_accuracy("positive, clearly\nReview: next one", ["positive"]) == 1.0
    assert label_accuracy("\n  \nnegative\npositive", ["negative"]) == 1.0, "first non-blank line"
    assert label_accuracy("positively", ["positive"]) == 0.0, "whole words only"
    assert label_accuracy("not positive", ["positive"]) == 0.0, "the label must come first"
    assert label_accuracy("Review: x\nSentiment: positive", ["positive"]) == 0.0
    gold = ["Group or organization of person"]
    assert label_accuracy("Group or organization of person\nQuestion: ...", gold) == 1.0
    assert label_accuracy("Group", gold) == 0.0, "a prefix of the label is not the label"
    assert label_accuracy("", ["positive"]) == 0.0


def test_score_dispatches_on_task():
    assert score("qa", "the cat sat", ["a cat sat down"]) == pytest.approx(0.8)
    assert score("summarization", "the cat sat", ["a cat sat down"]) == pytest.approx(4 / 7)
    assert score("fewshot", "Negative", ["negative"]) == 1.0
    with pytest.raises(ValueError, match="unknown task 'translation'"):
        score("translation", "x", ["x"])


@pytest.mark.parametrize("metric", [f1_score, rouge_l, label_accuracy])
def test_no_gold_answer_is_an_error(metric):
    with pytest.raises(ValueError, match="gold"):
        metric("anything", [])
