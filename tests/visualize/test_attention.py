"""Attention maps and sink-mass bars, checked against scores computed by hand."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from visualize.attention import (
    attention_heatmaps,
    attention_matrix,
    pool_columns,
    sink_mass_bars,
)


def test_minmax_rows_span_zero_to_one_and_masked_keys_are_nan(inspections):
    result = inspections["naive"]
    matrix = attention_matrix(result, layer=1, head=2, mode="minmax")
    assert matrix.shape == (2, 16)
    scores = result.scores[1, 2]
    for row in range(2):
        visible = torch.isfinite(scores[row])
        values = matrix[row][visible]
        assert values.min().item() == pytest.approx(0.0)
        assert values.max().item() == pytest.approx(1.0)
        expected = (scores[row][visible] - scores[row][visible].min()) / (
            scores[row][visible].max() - scores[row][visible].min())
        torch.testing.assert_close(values, expected)
    assert math.isnan(matrix[0, 15]) and not math.isnan(matrix[1, 15])


def test_softmax_rows_sum_to_one(inspections):
    matrix = attention_matrix(inspections["naive"], layer=0, head=1, mode="softmax")
    torch.testing.assert_close(torch.nansum(matrix, dim=-1), torch.ones(2))
    torch.testing.assert_close(matrix[1], torch.softmax(inspections["naive"].scores[0, 1, 1], -1))


def test_averages_are_means_of_the_single_maps(inspections):
    result = inspections["legolink-2"]
    singles = torch.stack([torch.stack([attention_matrix(result, layer, head, "softmax")
                                        for head in range(3)]) for layer in range(2)])
    torch.testing.assert_close(attention_matrix(result, None, None, "softmax"),
                               torch.nanmean(singles, dim=(0, 1)), equal_nan=True)
    torch.testing.assert_close(attention_matrix(result, 1, None, "softmax"),
                               torch.nanmean(singles[1], dim=0), equal_nan=True)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layer": 2, "head": None, "mode": "minmax"}, r"layer must be in \[0, 1\], got 2"),
    ({"layer": None, "head": -1, "mode": "minmax"}, r"head must be in \[0, 2\], got -1"),
    ({"layer": None, "head": None, "mode": "raw"}, "mode must be one of minmax, softmax"),
])
def test_attention_matrix_refuses_bad_choices(inspections, kwargs, message):
    with pytest.raises(ValueError, match=message):
        attention_matrix(inspections["naive"], **kwargs)


def test_heatmaps_one_panel_per_algorithm_with_chunk_ticks(inspections):
    fig = attention_heatmaps(inspections, layer=0, head=None, mode="minmax",
                             key_tokens=[f"t{i}" for i in range(15)])
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert [a.text for a in fig.layout.annotations] == ["naive (rows: its own answer)",
                                                        "legolink-2 (rows: its own answer)"]
    expected = attention_matrix(inspections["legolink-2"], 0, None, "minmax")
    z = torch.tensor([[math.nan if v is None else v for v in row] for row in fig.data[1].z])
    torch.testing.assert_close(z, expected, equal_nan=True)
    assert list(fig.layout.xaxis.tickvals) == [3, 8]
    assert list(fig.layout.xaxis.ticktext) == ["C1", "C2"]
    assert fig.layout.title.text == "Attention · layer 0 · all heads"
    # hover: the query row's token and each key's token and segment; key 15 is an answer token
    custom = fig.data[0].customdata
    assert list(custom[0][4]) == ["last prompt token: ↵", 4, "t4 · chunk 1: alpha"]
    assert list(custom[1][15][1:]) == [15, "yes · answer"]
    assert list(fig.data[0].x) == list(range(16))  # short prompt: one column per position
    assert fig.layout.xaxis2.title.text == "context position (C = chunk start)"


def test_long_prompts_are_max_pooled_so_a_sink_column_survives():
    matrix = torch.zeros(2, 1500)
    matrix[:, 1001] = 0.9  # one bright key
    matrix[0, 1400:] = float("nan")  # masked for the first row
    values, positions, width = pool_columns(matrix, max_columns=600)
    assert width == 3 and values.shape == (2, 500)
    assert values[:, 333].tolist() == pytest.approx([0.9, 0.9])  # bin 999-1001
    assert positions[:, 333].tolist() == [1001, 1001]
    assert positions[1, 0].item() == 0 and positions[1, 499].item() == 1497
    assert math.isnan(values[0, 499]) and values[1, 499].item() == 0.0
    assert int(torch.isnan(values[0]).sum()) == 33  # bins 467-499 lie wholly in 1401-1499


def test_sink_mass_bars_are_the_results_sink_mass(inspections):
    fig = sink_mass_bars(inspections, k=2, layer=None)
    assert [t.name for t in fig.data] == ["naive", "legolink-2"]
    for trace, result in zip(fig.data, inspections.values(), strict=True):
        assert list(trace.x) == ["C1", "C2"]
        # The bars are the engine's numbers (InspectResult.sink_mass), drawn as they are.
        assert list(trace.y) == result.sink_mass(2, None)
        assert list(sink_mass_bars({"x": result}, 2, 1, 0).data[0].y) == pytest.approx([
            float(torch.softmax(result.scores[1, 0], -1).mean(0)[s:s + 2].sum())
            for s in (3, 8)], abs=1e-6)
        assert list(trace.customdata) == ["alpha", "beta"]
    assert fig.layout.barmode == "group"
    with pytest.raises(ValueError, match="k must be at least 1"):
        sink_mass_bars(inspections, k=0)


def test_softmax_is_drawn_on_a_log_scale(inspections):
    fig = attention_heatmaps(inspections, 1, 2, "softmax")
    weights = attention_matrix(inspections["naive"], 1, 2, "softmax")
    z = torch.tensor([[math.nan if v is None else v for v in row] for row in fig.data[0].z])
    torch.testing.assert_close(z, torch.log10(weights.clamp_min(1e-4)), equal_nan=True)
    assert fig.layout.coloraxis.cmin == -4 and fig.layout.coloraxis.cmax == 0
    assert fig.data[0].text[0][3] == f"{float(weights[0, 3]):.4f}"  # hover: the weight itself


def test_difference_from_full_recompute(inspections):
    reference = inspections["legolink-2"]
    fig = attention_heatmaps({"naive": inspections["naive"]}, None, None, "difference",
                             reference=reference)
    expected = (attention_matrix(inspections["naive"], None, None, "softmax")
                - attention_matrix(reference, None, None, "softmax"))
    # Both answers are (1, 2): every row compares (test_inspector checks the blanked rows).
    z = torch.tensor([[math.nan if v is None else v for v in row] for row in fig.data[0].z])
    torch.testing.assert_close(z, expected, equal_nan=True)
    assert fig.layout.coloraxis.cmid == 0 and fig.layout.coloraxis.colorscale[0][1] != ""
    with pytest.raises(ValueError, match="needs full recompute's attention"):
        attention_heatmaps(inspections, None, None, "difference")


def test_titles_and_labels_are_escaped_for_plotly(inspections):
    result = inspections["naive"]
    seg = result.run.layout.segments[1]
    evil = replace(seg, title="<a href='http://x'>t</a>")
    layout = replace(result.run.layout, segments=(result.run.layout.segments[0], evil,
                                                  *result.run.layout.segments[2:]))
    bad = replace(result, run=replace(result.run, layout=layout))
    fig = sink_mass_bars({"naive": bad}, 2)
    assert fig.data[0].customdata[0].startswith("&lt;a href='http://x'&gt;")
    heat = attention_heatmaps({"naive": bad})
    assert "&lt;a href" in heat.data[0].customdata[0][4][2]


def test_empty_attention_figures_say_what_to_do():
    assert "Inspect a request" in attention_heatmaps({}).layout.annotations[0].text
    assert "Inspect a request" in sink_mass_bars({}, 4).layout.annotations[0].text


def test_blank_difference_rows_are_labelled_with_the_reason(inspections):
    """Rows from the first answer token that differs from full recompute's query other
    tokens: they are blank, and the panel's title says so on a second line."""
    reference = inspections["legolink-2"]  # answer (1, 2)
    differs = replace(inspections["naive"], run=replace(inspections["naive"].run,
                                                        token_ids=(5, 2)))
    fig = attention_heatmaps({"naive": differs, "same": inspections["naive"]}, None, None,
                             "difference", reference=reference)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["naive (− full recompute)<br>blank from answer token 1: answers differ "
                      "there", "same (− full recompute)"]
    blank = fig.data[0].z[1]
    assert all(v is None or math.isnan(v) for v in blank), "row 1 is not compared"
    assert any(v is not None and not math.isnan(v) for v in fig.data[0].z[0])
    assert any(v is not None and not math.isnan(v) for v in fig.data[1].z[1])
    minmax = attention_heatmaps({"naive": differs}, None, None, "minmax")
    assert [a.text for a in minmax.layout.annotations] == ["naive (rows: its own answer)"]
