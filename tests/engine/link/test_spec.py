"""Algorithm labels (name[-variant][-number]), specs and the registry they are checked against."""

from __future__ import annotations

import pytest

from engine.link import (
    DEFAULT_ALGORITHMS,
    REFERENCE,
    AlgorithmSpec,
    algorithm_names,
    parameters,
    parse_algorithms,
    split_label,
)


def test_algorithm_specs_carry_their_parameter():
    specs = parse_algorithms("naive,legolink-16,cacheblend-15,legolink-8")
    assert [s.label for s in specs] == ["full_recompute", "naive", "legolink-16",
                                        "cacheblend-15", "legolink-8"]
    assert specs[2] == AlgorithmSpec("legolink", "", (("recompute_k", 16),))
    assert specs[3]["recompute_ratio"] == 0.15
    assert parse_algorithms(["legolink-4", "full_recompute"])[0].name == "full_recompute"
    for bad in ("magic", "naive-3", "legolink-x", "cacheblend-150", "legolink-4,legolink-4",
                "legolink-16-3", "legolink-"):
        with pytest.raises(ValueError):
            parse_algorithms(bad)


@pytest.mark.parametrize("label", ["full_recompute", "naive", "prefix_cache", "legolink-0",
                                   "legolink-16", "cacheblend-15", "cacheblend-100",
                                   "cacheblend-key-15", "querylink-16"])
def test_labels_round_trip(label):
    spec = AlgorithmSpec.parse(label)
    assert spec.label == label, "parse and label must be inverses"
    assert split_label(label)[0] == spec.name


def test_the_grammar_reads_a_variant_before_the_number():
    assert split_label("cacheblend-key-15") == ("cacheblend", "key", "15")
    assert split_label("legolink0") == ("legolink0", "", ""), "a digit in a name is the name's"
    assert split_label("legolink-0") == ("legolink", "", "0")
    assert AlgorithmSpec.parse("cacheblend-key-15").variant == "key"
    with pytest.raises(ValueError, match="cacheblend has no variant 'value'"):
        AlgorithmSpec.parse("cacheblend-value-15")


def test_a_plain_name_takes_the_declared_default():
    assert AlgorithmSpec.parse("legolink").label == "legolink-16"
    assert AlgorithmSpec.parse("cacheblend").label == "cacheblend-15"


def test_registry_lists_every_algorithm_once_with_the_reference():
    names = algorithm_names()
    assert REFERENCE in names and len(set(names)) == len(names)
    assert names == ("full_recompute", "prefix_cache", "naive", "cacheblend", "legolink",
                     "legolink0", "ape", "querylink", "prophetkv", "infoflow")
    assert [p.keyword for p in parameters()] == ["recompute_k", "recompute_ratio",
                                                 "ape_temperature", "ape_scale"]
    assert [s.label for s in parse_algorithms(DEFAULT_ALGORITHMS)] == list(DEFAULT_ALGORITHMS)
