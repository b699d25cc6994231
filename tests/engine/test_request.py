"""Requests and algorithm specs: one label format, one set of checks, with their messages."""

from __future__ import annotations

import pytest

from engine import AlgorithmSpec, EngineConfig, Request
from engine.link.registry import ALGORITHMS, REFERENCE
from engine.request import parse_algorithms

CONFIG = EngineConfig(model="unused", device="cpu", dtype="float32", recompute_k=8)


def test_algorithm_specs_carry_their_parameter():
    config = EngineConfig(model="unused", device="cpu", dtype="float32", recompute_k=8)
    specs = parse_algorithms("naive,legolink-16,cacheblend-15,legolink", config)
    assert [s.label for s in specs] == ["full_recompute", "naive", "legolink-16",
                                        "cacheblend-15", "legolink-8"]
    assert specs[2] == AlgorithmSpec("legolink", 16)
    assert specs[3].kwargs() == {"algorithm": "cacheblend", "recompute_ratio": 0.15}
    assert parse_algorithms(["legolink-4", "full_recompute"], config)[0].name == "full_recompute"
    for bad in ("magic", "naive-3", "legolink-x", "cacheblend-150", "legolink-4,legolink-4"):
        with pytest.raises(ValueError):
            parse_algorithms(bad, config)



@pytest.mark.parametrize("label", ["full_recompute", "naive", "prefix_cache", "legolink-0",
                                   "legolink-16", "cacheblend-15", "cacheblend-100"])
def test_labels_round_trip(label):
    spec = AlgorithmSpec.parse(label, CONFIG)
    assert spec.label == label, "parse and label must be inverses"
    assert AlgorithmSpec.name_of(label) == spec.name


def test_registry_lists_every_algorithm_once_with_the_reference():
    assert REFERENCE in ALGORITHMS and len(set(ALGORITHMS)) == len(ALGORITHMS)
    assert ALGORITHMS == ("full_recompute", "prefix_cache", "naive", "cacheblend", "legolink",
                          "querylink")


def test_request_takes_the_parameter_its_algorithm_has():
    r = Request.make(CONFIG, "p", ["k1"], "q?", "legolink", recompute_k=16.0,
                     recompute_ratio=0.3)
    assert r.algorithm == AlgorithmSpec("legolink", 16) and isinstance(r.algorithm.value, int)
    r = Request.make(CONFIG, "p", ["k1"], "q?", "cacheblend", recompute_k=16,
                     recompute_ratio=None)
    assert r.algorithm == AlgorithmSpec("cacheblend", 0.15), "None takes the configured default"
    assert Request.make(CONFIG, "p", ["k1"], "q?", "naive").algorithm.label == "naive"


@pytest.mark.parametrize("change, message", [
    ({"recompute_k": "16"}, "recompute_k must be an integer in"),
    ({"recompute_k": True}, "recompute_k must be an integer in"),
    ({"recompute_k": CONFIG.max_recompute_k + 1}, "recompute_k must be an integer in"),
    ({"max_new_tokens": None}, "max_new_tokens must be an integer in"),
    ({"temperature": -1}, "temperature must be in"),
    ({"chunks": None}, "no chunks chosen"),
    ({"question": None}, "prefix and question must be text"),
])
def test_request_refuses_with_a_message(change, message):
    args = {"prefix": "p", "chunks": ["k1"], "question": "q?", "algorithm": "legolink",
            "max_new_tokens": 4, **change}
    with pytest.raises(ValueError, match=message):
        Request.make(CONFIG, **args)
