"""Honest estimates: a compile counts only the chunks the store does not hold under the
visitor's own salt (a re-upload costs nothing; another visitor's copy tells nothing)."""

from __future__ import annotations

from app import compose, library
from app.cost import Work, compile_work
from app.lab import Lab
from app.limits import AppLimits
from app.planning import estimate_compare
from app.progress import CompilePlan, compile_plan
from app.uploads import Document
from tests.app.conftest import DOC_A, DOC_B, final

ME, OTHER = "visitor-1", "visitor-2"


def plan(lab, session: str, *texts: str) -> CompilePlan:
    return compile_plan(lab.engine, list(texts), lab.libraries.salt(session))


def test_a_recompile_of_stored_text_costs_nothing(lab):
    layers = lab.engine.model.spec.num_layers
    alder, birch = len(DOC_A) + 2, len(DOC_B) + 2  # byte tokenizer: text + "\n\n"
    assert plan(lab, ME, DOC_A, DOC_B) == CompilePlan(
        2, 2, alder + birch, compile_work(alder, layers) + compile_work(birch, layers))
    library.compile_text(lab, ME, DOC_A, "alder")
    again = plan(lab, ME, DOC_A, DOC_B)
    assert again == CompilePlan(2, 1, birch, compile_work(birch, layers)), \
        "only birch is left to compile"
    assert again.describe() == (f"compiling {birch} tokens in 1 new chunk(s); 1 already "
                                "compiled cost nothing")
    estimate = library.check_work(lab, ME, [Document("alder", DOC_A)])
    assert (estimate.work, estimate.seconds) == (Work(), 0.0), "a re-upload is free"
    assert estimate.what == "nothing to compile: all 1 chunk(s) are already in your library"
    compiled = lab.engine.store.stats().num_compiled
    status, _ = library.compile_text(lab, ME, DOC_A, "alder again")
    assert lab.engine.store.stats().num_compiled == compiled, "and nothing ran"
    assert status.endswith("0 new, 1 already in your library.")


def test_another_visitors_copy_is_no_discount(lab):
    library.compile_text(lab, ME, DOC_A, "alder")
    layers = lab.engine.model.spec.num_layers
    full = CompilePlan(1, 1, len(DOC_A) + 2, compile_work(len(DOC_A) + 2, layers))
    assert plan(lab, OTHER, DOC_A) == full, "held under my salt is not held under yours"
    estimate = library.check_work(lab, OTHER, [Document("alder", DOC_A)])
    assert estimate.work == full.work and estimate.seconds > 0
    assert estimate.what == f"compiling {len(DOC_A) + 2} tokens in 1 new chunk(s)"


def test_a_text_twice_in_one_call_is_compiled_once(lab):
    once = plan(lab, ME, DOC_B)
    twice = plan(lab, ME, DOC_B, DOC_B)
    assert (twice.num_chunks, twice.num_new_chunks, twice.work) == (2, 1, once.work)


def test_the_comparison_reports_each_run_as_it_starts(lab):
    keys = [library.compile_text(lab, ME, text, title)[1][0]["key"]
            for text, title in ((DOC_A, "alder"), (DOC_B, "birch"))]
    steps: list[tuple[float, str]] = []
    final(compose.run_compare(lab, ME, "", keys, "Who?", ["naive", "legolink"], 4, 0.5, 2,
                              progress=lambda fraction, desc: steps.append((fraction, desc))))
    assert steps == [(0.0, "1/3 full_recompute"), (1 / 3, "2/3 naive"),
                     (2 / 3, "3/3 legolink-4")], "the reference runs first, unshown but counted"


def variant_estimate(lab, session: str, keys: list[str]) -> Work:
    return estimate_compare(lab, session, "You answer.", keys, "Who?", ["legolink0"], 4, 0.5,
                            2).work


def test_held_compile_variants_of_my_own_chunks_cost_nothing(engine):
    lab = Lab.open(engine, AppLimits(max_call_s=3600))  # the point is the work, not a bound
    layers = lab.engine.model.spec.num_layers
    mine, theirs = ([library.compile_text(lab, who, text, title)[1][0]["key"]
                     for text, title in ((DOC_A, "alder"), (DOC_B, "birch"))]
                    for who in (ME, OTHER))
    examples = [key for keys in lab.examples.values() for key in keys][:1]
    before = {who: variant_estimate(lab, who, keys)
              for who, keys in ((ME, mine), (OTHER, theirs), ("x", examples))}
    copies = sum((compile_work(len(DOC_A) + 2, layers), compile_work(len(DOC_B) + 2, layers)),
                 Work())  # behind the prefix, both chunks need their LegoLink-0 copy
    for who, keys in ((ME, mine), (ME, examples)):
        final(compose.run_compare(lab, who, "You answer.", keys, "Who?", ["legolink0"], 4,
                                  0.5, 2))
    assert variant_estimate(lab, ME, mine) + copies == before[ME], "my copies are held"
    assert variant_estimate(lab, OTHER, theirs) == before[OTHER], "mine are not yours"
    assert variant_estimate(lab, ME, examples) == before["x"], \
        "an example's copy is shared: held or not, it is charged (it would tell who ran what)"
