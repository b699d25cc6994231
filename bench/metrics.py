"""Task metrics: SQuAD F1, Rouge-L, few-shot label accuracy (fidelity to full
recompute is the engine's `measure`).

Every score is the best over the gold answers, as in SQuAD and LongBench. `score` picks the
metric of a task ("qa" -> F1, "summarization" -> Rouge-L, "fewshot" -> label accuracy).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

TASKS = ("qa", "summarization", "fewshot")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _check_golds(golds: list[str]) -> None:
    # A score against no gold answer would read as a wrong answer; it is a data error.
    if not golds:
        raise ValueError("golds must hold at least one gold answer")


def _token_f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        # SQuAD v2: two empty answers agree; an empty and a non-empty one do not.
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: list[str]) -> float:
    """Token-level F1 of the normalised prediction, the best over `golds` (SQuAD)."""
    _check_golds(golds)
    return max(_token_f1(prediction, gold) for gold in golds)


@cache
def _rouge_scorer() -> Any:
    # Imported on first use: rouge_score pulls in nltk, which the engine does not otherwise need.
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l(prediction: str, golds: list[str]) -> float:
    """Rouge-L F-measure (rouge-score's tokenizer, no stemming), the best over `golds`."""
    _check_golds(golds)
    scorer = _rouge_scorer()
    return max(float(scorer.score(gold, prediction)["rougeL"].fmeasure) for gold in golds)


def label_accuracy(prediction: str, golds: list[str]) -> float:
    """Few-shot classification: 1.0 if the prediction names a gold label, else 0.0.

    The rule: take the first non-blank line of the prediction (a model often goes on with the
    next demonstration after the label), normalise it and the labels as `normalize_answer`
    does, and count a hit when a label's words are the line's first words. So "Positive." and
    "positive, clearly" match "positive"; "positively" and "not positive" do not.
    """
    _check_golds(golds)
    first_line = next((line for line in prediction.splitlines() if line.strip()), "")
    words = normalize_answer(first_line).split()
    for gold in golds:
        label = normalize_answer(gold).split()
        if label and words[: len(label)] == label:
            return 1.0
    return 0.0


_SCORERS: dict[str, Callable[[str, list[str]], float]] = {
    "qa": f1_score,
    "summarization": rouge_l,
    "fewshot": label_accuracy,
}


def score(task: str, prediction: str, golds: list[str]) -> float:
    """The task's metric: F1 for "qa", Rouge-L for "summarization", label accuracy for "fewshot"."""
    if task not in _SCORERS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return _SCORERS[task](prediction, golds)
