"""A call's cost counted before it runs (issue 19): the work each algorithm really does, as
the engine itself reports it; prices measured on this engine without touching anyone's
chunks; the bound a call is refused above, with its estimate and what to shrink; the notice a
long call gives first; and the prices learning from what calls took."""

from __future__ import annotations

import pytest

from app import library
from app.budget import (
    Estimate,
    Estimator,
    OverBudget,
    check_chars,
    check_context,
    seconds_text,
)
from app.cost import (
    Prices,
    Prompt,
    Shape,
    Work,
    compile_work,
    decode_work,
    document_work,
    link_work,
    run_work,
    span_pairs,
)
from engine import AlgorithmSpec
from tests.app.conftest import DOC_A, DOC_B

DOCS = [DOC_A, DOC_B, DOC_A.replace("fruit", "bread"), DOC_B.replace("paper", "glass")]


def test_prompt_tokens_are_counted_without_running_the_model(lab):
    keys = [library.compile_text(lab, "me", text, title)[1][0]["key"]
            for text, title in ((DOC_A, "a"), (DOC_B, "b"))]
    lab.engine.store.evict(keys[1])  # an evicted chunk counts by its remembered tokens
    compiles = lab.engine.store.stats().num_compiled
    request = lab.engine.request(prefix="Hi.", chunks=keys, question="Who?")
    n = lab.engine.plan(request).num_tokens
    assert n == len("Hi.") + len(DOC_A) + 2 + len(DOC_B) + 2 + len("Who?")
    assert lab.engine.store.stats().num_compiled == compiles
    plan = lab.engine.plan(request)
    assert plan.fits, "the prompt fits the context"
    assert plan.layout.token_ids == lab.engine.run_request(request).layout.token_ids, (
        "the plan lays the prompt out as the run does")
    with pytest.raises(KeyError, match="is not in the store"):
        lab.engine.plan(lab.engine.request(prefix="Hi.", chunks=["0" * 32], question="Who?"))


def test_context_and_character_checks():
    check_context(4000, 96, 4096)
    with pytest.raises(ValueError, match="the prompt has 4,001 tokens; with 96 new tokens it is "
                                         "over this app's limit of 4,096 tokens per call"):
        check_context(4001, 96, 4096)
    check_chars("x" * 10, "question", 10)
    with pytest.raises(OverBudget, match="the question has 11 characters, over this app's "
                                         "limit of 10: shorten it"):
        check_chars("x" * 11, "question", 10)


@pytest.mark.parametrize("label", ["full_recompute", "naive", "legolink-0", "legolink-3",
                                   "legolink-1024", "cacheblend-0", "cacheblend-40",
                                   "cacheblend-100", "querylink-1", "querylink-6",
                                   "querylink-1024"])
def test_the_work_counted_is_the_work_the_engine_does(tiny4_engine, label):
    """Positions through each layer, counted from the prompt alone, equal what the engine
    reports it computed (`num_token_layers`), algorithm by algorithm."""
    engine = tiny4_engine
    keys = [engine.compile(doc) for doc in DOCS]
    spec = AlgorithmSpec.parse(label)
    result = engine.run("Be brief.", keys, "Who chairs it?", spec, max_new_tokens=3)
    layers = engine.model.spec.num_layers
    work = link_work(Prompt.of(result.layout), spec, layers)
    assert work.token_layers == result.num_token_layers, \
        f"{label}: counted {work.token_layers}, the engine computed {result.num_token_layers}"
    assert work.runs == 1 and work.gathered == (0 if spec.name == "full_recompute" else
                                                sum(len(s.token_ids) for s in
                                                    result.layout.chunks))


def test_prefix_caching_is_counted_at_most_as_full_recompute(tiny4_engine):
    """What prefix caching reuses depends on earlier requests (and must not depend on other
    visitors'): it is counted as full recompute, the most it may compute."""
    engine = tiny4_engine
    keys = [engine.compile(doc) for doc in DOCS]
    layers = engine.model.spec.num_layers
    for _ in range(2):  # the second run reuses the first's prefix
        result = engine.run("Be brief.", keys, "Who?", "prefix_cache", max_new_tokens=2)
        prompt = Prompt.of(result.layout)
        counted = link_work(prompt, AlgorithmSpec("prefix_cache"), layers)
        assert counted == link_work(prompt, AlgorithmSpec("full_recompute"), layers)
        assert counted.token_layers >= result.num_token_layers


def test_attention_products_and_decode_steps_by_hand():
    layers = 2
    prompt = Prompt.synthetic([4, 3], prefix=2, suffix=1)  # positions 0..9
    assert (prompt.num_tokens, prompt.chunks, prompt.suffix_start) == (10, ((2, 4), (6, 3)), 9)
    assert span_pairs(0, 10) == 55 and span_pairs(2, 4) == 3 + 4 + 5 + 6
    naive = link_work(prompt, AlgorithmSpec("naive"), layers)
    assert naive.token_layers == 3 * layers  # prefix 0, 1 and the suffix 9
    assert naive.pairs == (1 + 2 + 10) * layers
    lego = link_work(prompt, AlgorithmSpec.of("legolink", recompute_k=2), layers)  # 2, 3 and 6, 7
    assert lego.pairs == naive.pairs + (3 + 4 + 7 + 8) * layers
    decode = decode_work(10, 4, layers)  # 3 steps after the first token, at 10, 11, 12
    assert (decode.steps, decode.head_rows, decode.pairs) == (3, 3, (11 + 12 + 13) * layers)
    run = run_work(prompt, AlgorithmSpec("naive"), 4, layers)
    assert run == naive + decode
    assert compile_work(5, layers) == Work(runs=1, token_layers=10, pairs=15 * layers)
    two = document_work(9, 4, layers)  # 3 chunks of 3 tokens under a budget of 4
    assert two == compile_work(3, layers) * 3


def test_calibration_moves_nothing_of_anyones(lab):
    """Prices are measured on a scratch engine over the same model: no chunk, hit, compile
    count or prefix-cache entry of the app's engine changes."""
    engine = lab.engine
    before, cache = engine.store.stats(), engine.prefix_cache.stats()
    estimator = Estimator.calibrated(engine, long_call_s=10)
    after = engine.store.stats()
    assert (after.num_chunks, after.num_compiled, [c.hits for c in after.chunks]) == \
        (before.num_chunks, before.num_compiled, [c.hits for c in before.chunks])
    assert engine.prefix_cache.stats() == cache
    prices = estimator.prices
    assert prices.flop_s > 0 and min(prices.step_s, prices.gather_s, prices.run_s) >= 0
    assert "a 1,024-token prefill ≈" in estimator.describe()


def estimator(long_call_s: float = 5) -> Estimator:
    """Prices of round numbers: 1 ns per FLOP, nothing else."""
    shape = Shape(num_layers=1, linear_flops=1e6, attention_flops=0.0, head_flops=0.0)
    return Estimator(shape, Prices(1e-9, 0.0, 0.0, 0.0), long_call_s)


def test_a_call_over_the_bound_is_refused_with_its_estimate():
    est = estimator()
    estimate = est.estimate("answer", Work(token_layers=70_000), "6 runs of 3,600 tokens",
                            "choose fewer algorithms")
    assert estimate.seconds == pytest.approx(70.0)
    assert est.check(estimate, 70.0) is estimate
    with pytest.raises(OverBudget, match=r"this call would take about 70 s of model time on "
                                         r"this machine \(6 runs of 3,600 tokens\), over this "
                                         r"app's limit of 60 s per call: choose fewer "
                                         r"algorithms"):
        est.check(estimate, 60.0)
    assert (seconds_text(236.4), seconds_text(4.23), seconds_text(0.0134)) == \
        ("236 s", "4.2 s", "0.013 s")


def test_a_long_call_says_so_before_it_starts_and_the_prices_learn(capsys):
    est = estimator(long_call_s=5)
    work = Work(token_layers=10_000)  # 10 s at these prices
    with est.timed(est.estimate("answer", work, "3 runs of 900 tokens", "")) as timer:
        # Outside a Gradio event gr.Info prints; in the app it is a message box / API log.
        assert capsys.readouterr().out == ("This will take about 10 s on this machine (3 runs "
                                           "of 900 tokens); the model serves one call at a "
                                           "time.\n")
        timer.actual = Work(token_layers=5_000)  # the answers ended early: half the work
    with est.timed(est.estimate("answer", Work(token_layers=1_000), "short", "")):
        assert capsys.readouterr().out == ""  # 1 s: not long, no notice
    # Both calls took far less than priced (an exponential average), within its range.
    assert 0.25 <= est.seconds("answer", work) / 10.0 < 1.0
    # A kind not seen yet takes what all calls so far said about the machine.
    assert est.seconds("compile", work) == pytest.approx(est.seconds("answer", work))
    for _ in range(50):
        est.record("compile", work, 1000.0)  # a stalled machine: 100x the price
    assert est.seconds("compile", work) == pytest.approx(40.0)  # moved at most 4x


def test_estimates_grow_with_the_work_asked_for(lab):
    """The public knobs move the estimate the way they move the work."""
    from app.planning import estimate_compare

    keys = list(lab.example_titles)[:3]

    def seconds(algorithms, k=16, ratio=0.15, new_tokens=8) -> float:
        estimate = estimate_compare(lab, "me", "p", keys, "Who?", algorithms, k, ratio,
                                    new_tokens)
        assert isinstance(estimate, Estimate) and estimate.kind == "answer"
        return estimate.seconds

    naive = seconds(["naive"])  # full recompute runs too: the reference
    assert seconds(["naive", "legolink"], k=1024) > seconds(["naive", "legolink"], k=16) > naive
    assert seconds(["querylink"], k=1024) > seconds(["querylink"], k=2)
    assert seconds(["naive"], new_tokens=64) > naive
    assert seconds(["full_recompute", "naive", "legolink", "cacheblend", "querylink",
                    "prefix_cache"]) > seconds(["naive", "legolink"])


def test_estimating_a_call_runs_nothing(lab):
    """An estimate (in the validator, outside the model's lane) compiles nothing and moves
    no hit, also when the examples it names were cleared from the store."""
    from app.planning import estimate_compare

    keys = list(lab.example_titles)[:2]
    args = ("p", keys, "Who?", ["naive", "legolink"], 16, 0.15, 8)
    before = lab.engine.store.stats()
    estimate_compare(lab, "me", *args)
    after = lab.engine.store.stats()
    assert (after.num_compiled, [c.hits for c in after.chunks]) == \
        (before.num_compiled, [c.hits for c in before.chunks])
    lab.libraries.clear_all()  # the operator's clear: the examples recompile on use only
    again = lab.admission.screen(lab, "me", estimate_compare,
                                 dict(zip(["prefix", "chunks", "question", "algorithms", "k",
                                           "ratio", "max_new_tokens"], args, strict=True)))
    assert again.work == estimate_compare(lab, "me", *args).work  # from the tokens it recalls
    assert keys[0] not in lab.engine.store
    assert lab.engine.store.stats().num_compiled == before.num_compiled
