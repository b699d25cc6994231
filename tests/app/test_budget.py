"""A call's work counted before it runs, and the notice a long one gives first."""

from __future__ import annotations

import pytest

from app import library
from app.budget import DECODE_WEIGHT, Estimator, answer_work, check_context, prompt_tokens
from tests.app.conftest import DOC_A, DOC_B


def test_prompt_tokens_are_counted_without_running_the_model(lab):
    keys = [library.compile_text(lab, "me", text, title)[1][0]["key"]
            for text, title in ((DOC_A, "a"), (DOC_B, "b"))]
    lab.engine.store.evict(keys[1])  # an evicted chunk counts by its remembered tokens
    compiles = lab.engine.store.stats().num_compiled
    request = lab.engine.request(prefix="Hi.", chunks=keys, question="Who?")
    n = prompt_tokens(lab.engine, request)
    assert n == len("Hi.") + len(DOC_A) + 2 + len(DOC_B) + 2 + len("Who?")
    assert lab.engine.store.stats().num_compiled == compiles
    plan = lab.engine.plan(request)
    assert (plan.num_tokens, plan.fits) == (n, True), "the engine's plan is the count"
    assert plan.layout.token_ids == lab.engine.run_request(request).layout.token_ids, (
        "the plan lays the prompt out as the run does")
    with pytest.raises(KeyError, match="is not in the store"):
        prompt_tokens(lab.engine, lab.engine.request(prefix="Hi.", chunks=["0" * 32],
                                                     question="Who?"))


def test_context_check_and_work():
    check_context(4000, 96, 4096)
    with pytest.raises(ValueError, match="the prompt has 4,001 tokens; with 96 new tokens it is "
                                         "over this app's limit of 4,096 tokens per call"):
        check_context(4001, 96, 4096)
    assert answer_work(1000, 10, 3) == 3 * (1000 + DECODE_WEIGHT * 10)


def test_a_long_call_says_so_before_it_starts(capsys):
    estimator = Estimator(long_call_s=5)
    estimator.record("answer", 1000, 10.0)  # this machine: 10 ms per position
    with estimator.timed("answer", 1000, "3 runs of 900 tokens") as expected:
        # Outside a Gradio event gr.Info prints; in the app it is a message box / API log.
        assert capsys.readouterr().out == ("This will take about 10 s on this machine (3 runs "
                                           "of 900 tokens); the model serves one call at a "
                                           "time.\n")
        assert expected == pytest.approx(10.0)
    with estimator.timed("answer", 100, "short"):
        assert capsys.readouterr().out == ""  # 1 s: not long, no notice
    # It learns from what calls took (an exponential average): both were fast here.
    assert estimator.seconds("answer", 1000) < 10.0
    assert estimator.seconds("compile", 1000) == pytest.approx(1.0)  # the first guess
