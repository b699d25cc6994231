"""Inspect tab handlers on the tiny model: one model call per algorithm, redraws without."""

from __future__ import annotations

import gradio as gr
import pytest

from app.inspector import Inspection, inspect_attention, render_attention
from tests.app.conftest import DOC_A, DOC_B


@pytest.fixture()
def keys(engine) -> list[str]:
    return [engine.compile(DOC_A, "alder"), engine.compile(DOC_B, "birch")]


def run(engine, keys, **change):
    args = dict(prefix="Hi.", chunks=keys, question="Who?", algorithms=["naive", "legolink"],
                k=4, ratio=0.2, layer=1, all_layers=True, head=0, all_heads=True, mode="minmax",
                sink_tokens=3) | change
    return inspect_attention(engine, **args)


def test_inspect_draws_each_algorithm_side_by_side(engine, keys):
    heatmap, sinks, summary, inspection = run(engine, keys)
    assert isinstance(inspection, Inspection)
    assert list(inspection.results) == ["naive", "legolink-4"]
    n = len("Hi.") + len(DOC_A) + len(DOC_B) + 4 + len("Who?")
    assert len(inspection.key_tokens) == n
    assert "".join(inspection.key_tokens) == "Hi." + DOC_A + "\n\n" + DOC_B + "\n\nWho?"
    assert [a.text for a in heatmap.layout.annotations] == ["naive", "legolink-4"]
    assert "mean over layers, mean over heads" in heatmap.layout.title.text
    for trace, result in zip(sinks.data, inspection.results.values(), strict=True):
        assert list(trace.y) == pytest.approx(result.sink_mass(3, None))
    # behind a prefix, both chunks hold a false sink under naive linking
    naive, lego = (sum(r.sink_mass(3, None)) / 2 for r in inspection.results.values())
    assert summary == ("Mean attention mass on the first 3 tokens of each chunk not at "
                       f"position 0: **naive** {naive:.3f} · **legolink-4** {lego:.3f}. Naive "
                       "linking leaves a false sink at each chunk start.")
    # 8 query rows: the last prompt token and up to 7 answer tokens
    assert inspection.results["naive"].scores.shape[:3] == (2, 4, 8)


def test_a_lone_chunk_at_the_start_has_no_false_sink(engine, keys):
    *_, summary, _ = run(engine, keys[:1], prefix="")
    assert summary == "Only one chunk, at the prompt's start: there is no false sink to compare."


def test_redraw_uses_the_kept_scores(engine, keys):
    *_, inspection = run(engine, keys)
    compiled = engine.store.stats().num_compiled
    heatmap, sinks, _ = render_attention(inspection, 1, False, 2, False, "softmax", 5)
    assert "layer 1, head 2" in heatmap.layout.title.text
    assert "softmax" in heatmap.layout.coloraxis.colorbar.title.text
    assert "first 5 tokens (layer 1)" in sinks.layout.title.text
    assert engine.store.stats().num_compiled == compiled
    assert render_attention(None, 1, False, 2, False, "softmax", 5) == (gr.skip(),) * 3


@pytest.mark.parametrize(("change", "message"), [
    ({"layer": 2, "all_layers": False}, "layer must be an integer in [0, 1], got 2"),
    ({"head": 4, "all_heads": False}, "head must be an integer in [0, 3], got 4"),
    ({"mode": "raw"}, "mode must be one of minmax, softmax, got 'raw'"),
    ({"sink_tokens": 0}, "sink tokens must be an integer in [1, 256], got 0"),
    ({"algorithms": []}, "choose at least one algorithm"),
    ({"chunks": []}, "no chunks chosen"),
])
def test_inspect_refusals(engine, keys, change, message):
    with pytest.raises(gr.Error) as err:
        run(engine, keys, **change)
    assert err.value.message.startswith(message)
