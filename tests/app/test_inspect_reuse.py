"""Inspect reuses the visitor's kept attention: the same request (or fewer of its algorithms)
is drawn with no model call, a changed one runs the model for what is not kept; the header
says which request it shows and whether the model ran; no visitor reuses another's."""

from __future__ import annotations

import pytest

from app import library, start
from app.cost import Prompt, Work, inspect_work
from app.inspector import estimate_inspect, inspect_attention, plan_inspection, reuse_attention
from tests.app.conftest import DOC_A, DOC_B

ME, OTHER = "visitor-1", "visitor-2"
VIEW = dict(layer=1, all_layers=True, head=0, all_heads=True, mode="minmax", sink_tokens=3)


@pytest.fixture()
def runs(lab) -> list[str]:
    """The labels of the model's inspections, in order (the engine's own, counted)."""
    done: list[str] = []
    real = lab.engine.inspect_request

    def counted(request):
        done.append(request.algorithm.label)
        return real(request)
    lab.engine.inspect_request = counted
    return done


@pytest.fixture()
def keys(lab) -> list[str]:
    return [library.compile_text(lab, ME, DOC_A, "alder")[1][0]["key"],
            library.compile_text(lab, ME, DOC_B, "birch")[1][0]["key"]]


def request(keys, **change) -> dict:
    return dict(prefix="Hi.", chunks=keys, question="Who?", algorithms=["naive", "legolink"],
                k=4, ratio=0.2) | VIEW | change


def test_the_same_request_is_drawn_from_the_kept_runs(lab, keys, runs):
    *_, first = inspect_attention(lab, ME, **request(keys))
    assert runs == ["full_recompute", "naive", "legolink-4"]
    assert first == ("**Inspecting the Compose tab's request:** prefix “Hi\\.” · chunks alder, "
                     "birch · question “Who?”  \n**The model ran this time:** 3 runs "
                     "(full_recompute, naive, legolink-4).")
    estimate = estimate_inspect(lab, ME, **request(keys))
    assert estimate.work == Work() and estimate.what.startswith("0 runs of"), estimate.what
    heatmap, sinks, _, again = inspect_attention(
        lab, ME, **request(keys, mode="difference", all_layers=False))
    assert runs == ["full_recompute", "naive", "legolink-4"], "the same request ran again"
    assert again.endswith("**No model run this time:** the attention this request's last "
                          "inspection kept (full_recompute, naive, legolink-4).")
    assert [a.text.split("<br>")[0] for a in heatmap.layout.annotations] == [
        "naive (− full recompute)", "legolink-4 (− full recompute)"]
    assert heatmap.layout.title.text == "Attention · layer 1 · all heads"
    _, sinks, _, fewer = inspect_attention(lab, ME, **request(keys, algorithms=["legolink"]))
    assert len(runs) == 3 and len(sinks.data) == 1, "a subset of the kept runs is at hand"
    assert "No model run this time" in fewer
    assert list(lab.libraries.get(ME).inspection.results) == ["legolink-4"], \
        "redraws draw what the last press showed"


def test_a_changed_request_runs_only_what_is_not_kept(lab, keys, runs):
    inspect_attention(lab, ME, **request(keys))
    plan = plan_inspection(lab, ME, "Hi.", keys, "Who?", ["naive", "legolink"],
                           {"k": 5, "ratio": 0.2})
    layers = lab.engine.model.spec.num_layers
    assert [r.algorithm.label for r in plan.missing] == ["legolink-5"]
    assert plan.estimate.work == inspect_work(Prompt.of(plan.layout), plan.missing[0].algorithm,
                                              layers), "the estimate counts the missing run only"
    *_, header = inspect_attention(lab, ME, **request(keys, k=5))
    assert runs[3:] == ["legolink-5"], "naive and full recompute do not depend on k"
    assert header.endswith("**The model ran this time** for legolink-5 only; full_recompute, "
                           "naive from the attention kept for this request.")
    assert reuse_attention(lab, ME, **request(keys, k=4)) is not None, "both k's are kept"
    assert len(runs) == 4
    for change in ({"question": "Who else?"}, {"chunks": keys[::-1]}, {"prefix": "Hello."}):
        before = len(runs)
        assert reuse_attention(lab, ME, **request(keys, **change)) is None, change
        *_, header = inspect_attention(lab, ME, **request(keys, **change))
        assert runs[before:] == ["full_recompute", "naive", "legolink-4"], change
        assert "**The model ran this time:** 3 runs" in header
    assert "chunks birch, alder" not in header and "prefix “Hello\\.”" in header


def test_the_page_gate_draws_a_kept_request_without_the_model(lab, keys, runs):
    assert reuse_attention(lab, ME, **request(keys)) is None, "nothing kept yet"
    assert reuse_attention(lab, ME, **request(keys, chunks=["nope"])) is None, \
        "refused input is left for the model step to name"
    inspect_attention(lab, ME, **request(keys))
    heatmap, sinks, summary, header = reuse_attention(lab, ME, **request(keys))
    assert runs == ["full_recompute", "naive", "legolink-4"]
    assert len(heatmap.data) == 2 and len(sinks.data) == 2 and "Mean attention" in summary
    assert "No model run this time" in header
    assert reuse_attention(lab, ME, **request(keys, algorithms=["cacheblend"])) is None


def test_one_visitor_never_reuses_anothers_attention(lab, runs):
    """Two visitors inspect the same example request: each one's model runs, each keeps its
    own runs, and neither is drawn from the other's."""
    _, prefix, chunks = start.story_requests(lab)[-1]
    shared = request(list(chunks), prefix=lab.presets.prefixes[prefix])
    inspect_attention(lab, ME, **shared)
    mine = lab.libraries.get(ME).inspection
    assert reuse_attention(lab, OTHER, **shared) is None, "the other visitor's runs were used"
    assert plan_inspection(lab, OTHER, shared["prefix"], shared["chunks"], "Who?",
                           shared["algorithms"], {"k": 4, "ratio": 0.2}).held == {}
    *_, header = inspect_attention(lab, OTHER, **shared)
    assert runs == ["full_recompute", "naive", "legolink-4"] * 2
    theirs = lab.libraries.get(OTHER).inspection
    assert lab.libraries.get(ME).inspection is mine, "a visitor's kept runs stay its own"
    assert not set(mine.runs) & set(theirs.runs), "a request carries its visitor's salt"
    assert "**The model ran this time:** 3 runs" in header


def test_the_header_names_the_storys_request(lab, runs):
    prefix, chunks, question, algorithms, _ = start.inspect_last(lab, ME, "Who?")
    *_, header = inspect_attention(lab, ME, prefix=prefix, chunks=chunks, question=question,
                                   algorithms=algorithms, k=4, ratio=0.2, **VIEW)
    assert header.startswith("**Inspecting the story's request R4 (prefix 2, order 2):** "
                             "prefix “"), header
    assert header.endswith("**The model ran this time:** 3 runs (full_recompute, naive, "
                           "legolink-4).")
