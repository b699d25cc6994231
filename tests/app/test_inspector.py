"""Inspect tab handlers on the tiny model: one model call per algorithm (full recompute
included), redraws from the visitor's kept scores, a summary computed from the numbers."""

from __future__ import annotations

import math

import gradio as gr
import pytest
import torch

from app import library
from app.inspector import INSPECT_TOKENS, Inspection, inspect_attention, render_attention, summary
from tests.app.conftest import DOC_A, DOC_B
from visualize.attention import difference_matrix

ME = "visitor-1"


@pytest.fixture()
def keys(lab) -> list[str]:
    return [library.compile_text(lab, ME, DOC_A, "alder")[1][0]["key"],
            library.compile_text(lab, ME, DOC_B, "birch")[1][0]["key"]]


def run(lab, keys, session=ME, **change):
    args = dict(prefix="Hi.", chunks=keys, question="Who?", algorithms=["naive", "legolink"],
                k=4, ratio=0.2, layer=1, all_layers=True, head=0, all_heads=True, mode="minmax",
                sink_tokens=3) | change
    return inspect_attention(lab, session, **args)


def kept(lab, session=ME) -> Inspection:
    return lab.libraries.get(session).inspection


def test_inspect_draws_each_algorithm_side_by_side(lab, keys):
    heatmap, sinks, text, _ = run(lab, keys)
    inspection = kept(lab)
    assert list(inspection.results) == ["naive", "legolink-4"]
    assert inspection.reference.run.algorithm == "full_recompute"
    n = len("Hi.") + len(DOC_A) + len(DOC_B) + 4 + len("Who?")
    assert "".join(inspection.key_tokens) == "Hi." + DOC_A + "\n\n" + DOC_B + "\n\nWho?"
    assert len(inspection.key_tokens) == n
    assert [a.text for a in heatmap.layout.annotations] == [
        "naive (rows: its own answer)", "legolink-4 (rows: its own answer)"]
    assert heatmap.layout.title.text == "Attention · all layers · all heads"
    for trace, result in zip(sinks.data, inspection.results.values(), strict=True):
        assert list(trace.y) == pytest.approx(result.sink_mass(3))
    # The scores are kept in half precision: 2 layers, 4 heads, 8 query rows.
    assert inspection.results["naive"].scores.dtype == torch.float16
    assert inspection.results["naive"].scores.shape[:3] == (2, 4, INSPECT_TOKENS)
    assert text == summary(inspection, 3, None, None)
    assert "Rows: the last prompt token, then each algorithm's own first answer tokens" in text


def test_the_summary_is_computed_from_the_numbers_shown(lab, keys):
    run(lab, keys)
    inspection = kept(lab)
    for layer, head in ((None, None), (1, 2), (0, None)):
        masses = {label: sum(r.sink_mass(3, layer, head)) / 2
                  for label, r in inspection.results.items()}
        ref = sum(inspection.reference.sink_mass(3, layer, head)) / 2
        text = summary(inspection, 3, layer, head)
        where = (f"layer {layer}" if layer is not None else "all layers") + ", " + (
            f"head {head}" if head is not None else "all heads")
        assert text.startswith(f"Mean attention on the first 3 tokens of each chunk not at "
                               f"position 0 ({where}): **naive** {masses['naive']:.3f} · "
                               f"**legolink-4** {masses['legolink-4']:.3f} · full recompute "
                               f"{ref:.3f}."), text
        excess = masses["naive"] - ref
        if excess > max(0.01, 0.5 * ref):
            assert "Naive linking puts" in text and "the false sinks" in text
        else:
            assert f"no false sink stands out at {where}" in text, text


def test_a_lone_chunk_at_the_start_has_no_false_sink(lab, keys):
    _, _, text, _ = run(lab, keys[:1], prefix="")
    assert text == "Only one chunk, at the prompt's start: there is no false sink to compare."


def test_redraw_uses_the_kept_scores_without_a_model_call(lab, keys):
    run(lab, keys)
    compiled = lab.engine.store.stats().num_compiled
    heatmap, sinks, _ = render_attention(lab, ME, 1, False, 2, False, "softmax", 5)
    assert heatmap.layout.title.text == "Attention · layer 1 · head 2"
    assert heatmap.layout.coloraxis.colorbar.title.text == "softmax (log)"
    assert list(heatmap.layout.coloraxis.colorbar.ticktext) == ["0.0001", "0.001", "0.01",
                                                                 "0.1", "1"]
    assert sinks.layout.title.text == "Mass on chunks' first 5 tokens · layer 1"
    assert lab.engine.store.stats().num_compiled == compiled
    first, _, _ = render_attention(lab, ME, 1, False, 2, False, "difference", 5)
    assert first.layout.coloraxis.cmid == 0
    assert first.layout.annotations[0].text.startswith("naive (− full recompute)")


def test_another_visitor_has_nothing_to_redraw(lab, keys):
    run(lab, keys)
    heatmap, sinks, text = render_attention(lab, "visitor-2", 1, False, 2, False, "softmax", 5)
    assert (heatmap, sinks) == (gr.skip(), gr.skip())
    assert "no scores are kept for this page" in text


def test_the_difference_view_blanks_rows_after_the_answers_part(lab, keys):
    run(lab, keys)
    inspection = kept(lab)
    for result in inspection.results.values():
        diff = difference_matrix(result, inspection.reference, None, None)
        same = 0
        for a, b in zip(result.run.token_ids, inspection.reference.run.token_ids, strict=False):
            if a != b:
                break
            same += 1
        assert not torch.isnan(diff[0, :10]).any()  # the last prompt token: always comparable
        assert all(math.isnan(float(diff[row, 0])) for row in range(same + 1, diff.shape[0]))


@pytest.mark.parametrize(("change", "message"), [
    ({"layer": 2, "all_layers": False}, "layer must be an integer in [0, 1], got 2"),
    ({"head": 4, "all_heads": False}, "head must be an integer in [0, 3], got 4"),
    ({"head": None, "all_heads": False}, "head must be an integer in [0, 3], got None"),
    ({"mode": "raw"}, "mode must be one of minmax, softmax, difference, got 'raw'"),
    ({"sink_tokens": 0}, "sink tokens must be an integer in [1, 32], got 0"),
    ({"algorithms": []}, "choose at least one algorithm"),
    ({"chunks": []}, "no chunks chosen"),
    ({"session": "visitor-2"}, "chunk"),
])
def test_inspect_refusals(lab, keys, change, message):
    with pytest.raises(gr.Error) as err:
        run(lab, keys, **change)
    assert err.value.message.startswith(message)


def test_kept_scores_stay_under_one_budget_and_nobody_elses_are_dropped(lab, keys):
    run(lab, keys)
    size = kept(lab).num_bytes
    lab.libraries.limits = type(lab.limits)(inspect_bytes=int(1.5 * size), session_share=1.0,
                                            client_share=1.0)
    _, other = library.compile_text(lab, "visitor-2", DOC_A, "alder")
    _, _, summary, _ = run(lab, [other[0]["key"]], session="visitor-2")
    assert kept(lab) is not None and kept(lab, "visitor-2") is None, "the first one stays"
    assert "These scores are not kept for redraws" in summary
