"""Requests: one set of checks, with their messages; parameters by keyword, defaults declared."""

from __future__ import annotations

import pytest

from engine import AlgorithmSpec, EngineConfig, Request

CONFIG = EngineConfig(model="unused", device="cpu", dtype="float32")


def test_request_takes_the_parameter_its_algorithm_has():
    r = Request.make(CONFIG, "p", ["k1"], "q?", "legolink", recompute_k=16.0,
                     recompute_ratio=0.3)
    assert r.algorithm == AlgorithmSpec.of("legolink", recompute_k=16), "ratio is not legolink's"
    assert isinstance(r.algorithm["recompute_k"], int), "a whole 16.0 becomes the integer 16"
    r = Request.make(CONFIG, "p", ["k1"], "q?", "cacheblend", recompute_k=16,
                     recompute_ratio=None)
    assert r.algorithm.label == "cacheblend-15", "None takes the declared default"
    assert Request.make(CONFIG, "p", ["k1"], "q?", "naive").algorithm.label == "naive"


def test_request_takes_a_label_or_a_spec():
    by_label = Request.make(CONFIG, "p", ["k1"], "q?", "legolink-4")
    by_keyword = Request.make(CONFIG, "p", ["k1"], "q?", "legolink", recompute_k=4)
    assert by_label.algorithm == by_keyword.algorithm
    spec = AlgorithmSpec.parse("cacheblend-30")
    assert Request.make(CONFIG, "p", ["k1"], "q?", spec).algorithm is spec


@pytest.mark.parametrize("change, message", [
    ({"recompute_k": "16"}, "recompute_k must be an integer in"),
    ({"recompute_k": True}, "recompute_k must be an integer in"),
    ({"recompute_k": 1025}, r"recompute_k must be an integer in \[0, 1024\], got 1025"),
    ({"recompute_ratio": 2}, r"recompute_ratio must be in \[0, 1\], got 2"),
    ({"recompute_kk": 3}, "unknown parameter 'recompute_kk': the algorithms take recompute_k"),
    ({"algorithm": "legolink-4", "recompute_k": 3}, "recompute_k given twice"),
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
