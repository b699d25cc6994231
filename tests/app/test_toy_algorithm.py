"""An algorithm is one declaration: a toy one, registered with a knob of its own and no other
edit, runs in the engine and is found in the API schema of /run_compare, the Compose controls,
the figures, the tables and the benchmarks' command line."""

from __future__ import annotations

import pytest
import torch
from gradio_client import Client

import engine
from app import notes
from app.lab import Lab
from app.limits import AppLimits
from app.ui import build_ui
from app.ui_start import limits_table
from bench.cli import build_parser, parse_args
from engine import Kind, Layout, LinkAlgorithm, Parameter, parse_algorithms
from engine.link import registry
from tests.app.conftest import DOC_A, DOC_B, make_engine, serve
from visualize.frontier import frontier_figure
from visualize.ttft import ttft_bars

STRIDE = Parameter("stride", "toy_stride", "whole", 1, 8, 3, "stride: every n-th chunk token",
                   "every stride-th token of each chunk not at position 0 is recomputed")


class Toy(LinkAlgorithm):
    """Recompute every `stride`-th token of each chunk not at position 0 (variant "odd": from
    the chunk's second token on)."""

    name = "toy"
    summary = "every stride-th token of each chunk not at position 0"
    paper = "this test"
    color = "#123456"
    parameters = (STRIDE,)
    variants = ("odd",)

    def select(self, layout: Layout) -> torch.Tensor:
        chosen = super().select(layout)
        offset = 1 if self.spec.variant == "odd" else 0
        for seg in layout.chunks:
            if seg.start != 0:
                chosen[seg.start + offset:seg.end:int(self.value(STRIDE))] = True
        return chosen


@pytest.fixture()
def toy(monkeypatch):
    """The toy registered for one test; the registry as it was afterwards."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    engine.register(Toy)
    return Toy


def _expected_mask(result, stride: int, offset: int = 0) -> list[int]:
    mask = [int(Kind.NEW)] * result.num_prompt_tokens
    for seg in result.layout.chunks:
        for i in range(seg.start, seg.end):
            recomputed = (seg.start != 0 and i - seg.start >= offset
                          and (i - seg.start - offset) % stride == 0)
            mask[i] = int(Kind.RECOMPUTED if recomputed else Kind.CACHED)
    return mask


def test_the_engine_runs_it_by_name_label_and_keyword(toy, tiny4_engine):
    keys = [tiny4_engine.compile(DOC_A), tiny4_engine.compile(DOC_B)]
    by_keyword = tiny4_engine.run("Hi.", keys, "Who?", "toy", toy_stride=2, max_new_tokens=2)
    assert by_keyword.algorithm == "toy-2"
    assert list(by_keyword.mask) == _expected_mask(by_keyword, 2), "the mask is its select"
    assert tiny4_engine.run("Hi.", keys, "Who?", "toy-2", max_new_tokens=2).mask == (
        by_keyword.mask)
    assert tiny4_engine.run("Hi.", keys, "Who?", "toy", max_new_tokens=2).algorithm == "toy-3"
    odd = tiny4_engine.run("Hi.", keys, "Who?", "toy-odd-2", max_new_tokens=2)
    assert odd.algorithm == "toy-odd-2" and list(odd.mask) == _expected_mask(odd, 2, 1)
    with pytest.raises(ValueError, match=r"toy_stride must be an integer in \[1, 8\], got 9"):
        tiny4_engine.run("Hi.", keys, "Who?", "toy", toy_stride=9)


def test_the_app_offers_it_with_its_knob_after_the_existing_inputs(
        toy, tiny_engine_config, tiny_model, examples_cache, tmp_path):
    lab = Lab.open(make_engine(tiny_engine_config, tiny_model, examples_cache,
                               tmp_path / "cache"), AppLimits())
    demo = build_ui(lab)
    api = demo.get_api_info()["named_endpoints"]
    names = [p["parameter_name"] for p in api["/run_compare"]["parameters"]]
    assert names == ["prefix", "chunks", "question", "algorithms", "k", "ratio",
                     "max_new_tokens", "ape_t", "ape_s", "stride"], "a new knob comes last"
    stride = api["/run_compare"]["parameters"][-1]
    assert stride["parameter_has_default"] and stride["parameter_default"] == 3
    for endpoint, last in (("/inspect", "stride"), ("/bench_accuracy", "stride"),
                           ("/bench_speed", "stride")):
        assert api[endpoint]["parameters"][-1]["parameter_name"] == last, endpoint
    shown = {c.elem_id: c for c in demo.blocks.values() if getattr(c, "elem_id", None)}
    slider = shown["compose-stride"]
    assert (slider.minimum, slider.maximum, slider.value) == (1, 8, 3)
    assert slider.label == "stride: every n-th chunk token (toy)"
    for checkboxes in ("compose-algorithms", "inspect-algorithms", "bench-algorithms"):
        assert shown[checkboxes].choices[-2:] == [("toy", "toy"), ("toy-odd", "toy-odd")], (
            checkboxes)
    assert "| `toy` | stride (1..8, default 3) |" in notes.algorithms_markdown()
    assert "| stride: every n-th chunk token (toy) | 1..8, default 3 |" in limits_table(lab)

    demo, url = serve(lab)
    try:
        client = Client(url, verbose=False)
        key = client.predict(DOC_A, "a", api_name="/compile_text")[1][0]["key"]
        other = client.predict(DOC_B, "b", api_name="/compile_text")[1][0]["key"]
        *_, report = client.predict("Hi.", [key, other], "Who?", ["toy-odd", "toy"], 4, 0.2,
                                    2, 0.9, 0.9, 2, api_name="/run_compare")  # APE's T, S
        assert [r["algorithm"] for r in report["results"]] == ["toy-2", "toy-odd-2"]
        *_, report = client.predict("Hi.", [key, other], "Who?", ["toy"], 4, 0.2, 2,
                                    api_name="/run_compare")
        assert report["results"][0]["algorithm"] == "toy-3", "without it, its default"
    finally:
        demo.close()


def test_figures_and_the_command_line_know_it(toy, tiny4_engine):
    key = tiny4_engine.compile(DOC_A)
    result = tiny4_engine.run("", [key, key], "Who?", "toy-4", max_new_tokens=1)
    assert list(ttft_bars([result]).data[0].marker.color) == ["#123456"]
    rows = {label: {"ttft_ms_median": t, "first_token_kl": kl, "agreement": 1.0,
                    "recompute_share": 0.1, "score": 0.0}
            for label, t, kl in (("toy-2", 20.0, 0.1), ("toy-4", 10.0, 0.2))}
    block = {"num_chunks": 2, "context_tokens_mean": 100.0, "n": 1, "algorithms": rows}
    figure = frontier_figure({"lengths": {"2": block}})
    trace = next(t for t in figure.data if t.legendgroup == "toy")
    assert trace.name == "toy-{2,4}" and trace.line.color == "#123456"
    assert list(trace.text) == list(trace.hovertext) == ["toy-2", "toy-4"]
    args = parse_args(["accuracy", "--data", "x.jsonl", "--out", "o", "--algorithms", "toy-5"])
    assert [s.label for s in parse_algorithms(args.algorithms)] == ["full_recompute", "toy-5"]
    help_text = " ".join(build_parser()._subparsers._group_actions[0]
                         .choices["accuracy"].format_help().split())
    assert "toy-3 (stride: every n-th chunk token: 1..8, default 3)" in help_text
