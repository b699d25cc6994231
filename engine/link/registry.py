"""The registry of link algorithms, built from their classes: adding one is writing its file (a
`LinkAlgorithm` subclass that declares itself) and listing it below, in the order the app
shows them. Everything that names algorithms or their parameters asks here.
"""

from __future__ import annotations

import re

from engine.link.ape import APE
from engine.link.base import LinkAlgorithm
from engine.link.cacheblend import CacheBlend
from engine.link.compile import DEFAULT_COMPILE
from engine.link.full_recompute import FullRecompute
from engine.link.infoflow import InfoFlow
from engine.link.legolink import LegoLink
from engine.link.legolink0 import LegoLink0
from engine.link.naive import Naive
from engine.link.parameter import RECOMPUTE_K, RECOMPUTE_RATIO, Parameter
from engine.link.prefix_cache import PrefixCaching
from engine.link.prophetkv import ProphetKV
from engine.link.querylink import QueryLink

WORD = re.compile(r"[a-z][a-z0-9_]*")  # a name or a variant: lower case, no '-'
VARIANT = re.compile(r"[a-z0-9_:]{1,64}")  # a compile variant's name, as the store's codec reads it
_REGISTRY: dict[str, type[LinkAlgorithm]] = {}


def register(cls: type[LinkAlgorithm]) -> type[LinkAlgorithm]:
    """Add an algorithm class (after those registered before it) -> the class. Its
    declaration is checked here, once: a name and variants a label can carry, a colour, and
    parameters whose keyword and name mean one thing across every algorithm."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not WORD.fullmatch(name):
        raise ValueError(f"{cls.__name__}: an algorithm name is lower case letters, digits and "
                         f"'_' (a label adds '-variant' and '-number'), got {name!r}")
    if _REGISTRY.get(name, cls) is not cls:
        raise ValueError(f"algorithm {name!r} is registered already")
    if not all(isinstance(v, str) and WORD.fullmatch(v) for v in cls.variants):
        raise ValueError(f"{name}: a variant is a lower case word, got {cls.variants!r}")
    if not getattr(cls, "summary", "") or not re.fullmatch(r"#[0-9a-fA-F]{6}", cls.color):
        raise ValueError(f"{name}: declare a summary and a colour (#rrggbb)")
    variant = cls.compile_variant
    if variant != DEFAULT_COMPILE:
        if not isinstance(variant.name, str) or not VARIANT.fullmatch(variant.name):
            raise ValueError(f"{name}: a compile variant is named in lower case letters, digits, "
                             f"'_' and ':' (at most 64), got {variant.name!r}")
        for other in _REGISTRY.values():
            if other.compile_variant.name == variant.name and other.compile_variant != variant:
                raise ValueError(f"{name}: compile variant {variant.name!r} is another's name")
    known = {p.keyword: p for p in parameters()} | {p.name: p for p in parameters()}
    for p in cls.parameters:
        for key in (p.keyword, p.name):
            if known.get(key, p) != p:
                raise ValueError(f"{name}: parameter {key!r} is declared already, otherwise")
    _REGISTRY[name] = cls
    return cls


def algorithm_names() -> tuple[str, ...]:
    """The registered names, in display order."""
    return tuple(_REGISTRY)


def algorithm_choices() -> tuple[str, ...]:
    """What a user picks from (the app's checkboxes), in display order: every name, followed
    by `name-variant` for each of its variants."""
    return tuple(choice for name, cls in _REGISTRY.items()
                 for choice in (name, *(f"{name}-{variant}" for variant in cls.variants)))


def algorithm(name: str) -> type[LinkAlgorithm]:
    """The class registered as `name`; a ValueError names the choices."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}: choose from "
                         f"{', '.join(algorithm_names())}")
    return _REGISTRY[name]


def parameters() -> tuple[Parameter, ...]:
    """Every declared parameter once: k and ratio first (the app's endpoints have taken them,
    in this order, since their first release), then the others in registry order."""
    seen = {p.keyword: p for p in (RECOMPUTE_K, RECOMPUTE_RATIO)}
    for cls in _REGISTRY.values():
        for p in cls.parameters:
            seen.setdefault(p.keyword, p)
    return tuple(seen.values())


def parameter(keyword: str) -> Parameter:
    """The parameter a request keyword names; a ValueError names the choices."""
    for p in parameters():
        if p.keyword == keyword:
            return p
    raise ValueError(f"unknown parameter {keyword!r}: the algorithms take "
                     f"{', '.join(p.keyword for p in parameters())}")


def users(p: Parameter) -> tuple[str, ...]:
    """The names of the algorithms that take `p`."""
    return tuple(name for name, cls in _REGISTRY.items() if p in cls.parameters)


for _cls in (FullRecompute, PrefixCaching, Naive, CacheBlend, LegoLink, LegoLink0, APE,
             QueryLink, ProphetKV, InfoFlow):
    register(_cls)

REFERENCE = FullRecompute.name  # what every fidelity measure compares against
NAIVE = Naive.name  # linking without correction: the false sinks every other link removes
# What runs when nobody chooses: the benchmarks' algorithms, and the app's checked boxes.
DEFAULT_ALGORITHMS = (REFERENCE, NAIVE, "cacheblend-15", "legolink-2", "legolink-16",
                      "prefix_cache")
