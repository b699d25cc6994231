"""The one typed request, and algorithm specs ("legolink-16" <-> name and parameter).

Everything a caller gives the engine (the app's sliders, an API client's JSON, a benchmark's
command line) becomes a `Request` here, checked once, with the messages users see. The app
and the benchmarks never re-validate and never build labels of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.config import EngineConfig
from engine.link import ALGORITHMS, REFERENCE, REGISTRY, Parameter


def whole_number(value: Any, name: str, low: int, high: int) -> int:
    """An integer setting; a whole float (16.0, as sliders and JSON send) counts as one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    if not (float(value).is_integer() and low <= value <= high):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def real_number(value: Any, name: str, low: float, high: float) -> float:
    """A real-valued setting in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return float(value)


PARAMETERS = tuple({cls.parameter: None for cls in REGISTRY.values() if cls.parameter})


def _checked(parameter: Parameter, value: Any, config: EngineConfig) -> float | int:
    """A parameter's value within its range: a ratio in [0, 1], k in [0, max_recompute_k]."""
    if parameter.percent:
        return real_number(value, parameter.keyword, 0.0, 1.0)
    return whole_number(value, parameter.keyword, 0, config.max_recompute_k)


@dataclass(frozen=True)
class AlgorithmSpec:
    """One link algorithm with its parameter (None for those without one)."""

    name: str
    value: float | int | None = None

    @property
    def label(self) -> str:
        """"legolink-16", "cacheblend-15", "naive": the name everywhere (UI, API, files)."""
        parameter = REGISTRY[self.name].parameter
        return self.name if parameter is None else f"{self.name}-{parameter.write(self.value)}"

    @classmethod
    def make(cls, name: Any, config: EngineConfig, value: Any = None) -> AlgorithmSpec:
        """A registered name and its parameter's value (None: the configured default)."""
        if name not in REGISTRY:
            raise ValueError(f"unknown algorithm {name!r}: choose from {', '.join(ALGORITHMS)}")
        parameter = REGISTRY[name].parameter
        if parameter is None:
            return cls(name)
        return cls(name, _checked(parameter, getattr(config, parameter.keyword)
                                  if value is None else value, config))

    @classmethod
    def with_params(cls, name: Any, config: EngineConfig, recompute_k: Any = None,
                    recompute_ratio: Any = None) -> AlgorithmSpec:
        """An algorithm by name, taking from the parameters given the one it has (None: the
        configured default). The others are checked too: bad input is refused wherever it
        is, not ignored."""
        given = {"recompute_k": recompute_k, "recompute_ratio": recompute_ratio}
        for parameter in PARAMETERS:
            if given[parameter.keyword] is not None:
                _checked(parameter, given[parameter.keyword], config)
        parameter = REGISTRY[name].parameter if name in REGISTRY else None
        return cls.make(name, config, given[parameter.keyword] if parameter else None)

    @staticmethod
    def name_of(label: str) -> str:
        """The algorithm name a label starts with: "legolink-16" -> "legolink"."""
        return label.partition("-")[0]

    @classmethod
    def parse(cls, text: str, config: EngineConfig) -> AlgorithmSpec:
        """"legolink-16" -> AlgorithmSpec("legolink", 16); a plain name takes the default."""
        label = text.strip()
        name, dash, param = AlgorithmSpec.name_of(label), "-" in label, label.partition("-")[2]
        if name not in REGISTRY:
            raise ValueError(f"unknown algorithm {text!r}: choose from {', '.join(ALGORITHMS)} "
                             "(those with a parameter take it after '-': legolink-16, "
                             "cacheblend-15)")
        parameter = REGISTRY[name].parameter
        if not dash:
            return cls.make(name, config)
        if parameter is None:
            raise ValueError(f"{name} takes no parameter, got {text!r}")
        if not param.isdigit():
            raise ValueError(f"{text!r}: the parameter after '-' must be a whole number")
        return cls.make(name, config, parameter.read(param))

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `Engine.run` / `Engine.stream` for this spec."""
        parameter = REGISTRY[self.name].parameter
        return {"algorithm": self.name,
                **({parameter.keyword: self.value} if parameter is not None else {})}


def parse_algorithms(specs: str | list[str | AlgorithmSpec] | tuple[str | AlgorithmSpec, ...],
                     config: EngineConfig) -> list[AlgorithmSpec]:
    """A comma-separated string or a list of labels (or specs) -> specs, the reference first
    (added if missing); the same label twice is refused."""
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    parsed = [s if isinstance(s, AlgorithmSpec) else AlgorithmSpec.parse(s, config)
              for s in items if isinstance(s, AlgorithmSpec) or s.strip()]
    labels = [p.label for p in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"algorithms given twice: {', '.join(duplicates)}")
    reference = [p for p in parsed if p.name == REFERENCE] or [AlgorithmSpec(REFERENCE)]
    return reference + [p for p in parsed if p.name != REFERENCE]


@dataclass(frozen=True)
class Request:
    """One prompt under one algorithm: checked, typed, ready for the engine."""

    prefix: str
    chunks: tuple[str, ...]  # chunk keys in prompt order (the same key may repeat)
    question: str
    algorithm: AlgorithmSpec
    max_new_tokens: int
    temperature: float = 0.0  # 0: greedy
    seed: int | None = None  # for sampling

    @classmethod
    def make(cls, config: EngineConfig, prefix: Any = "", chunks: Any = (), question: Any = "",
             algorithm: Any = "legolink", recompute_k: Any = None, recompute_ratio: Any = None,
             max_new_tokens: Any = 32, temperature: Any = 0.0, seed: Any = None) -> Request:
        """Check loosely typed inputs -> Request; a ValueError names the first problem."""
        spec = (algorithm if isinstance(algorithm, AlgorithmSpec) else
                AlgorithmSpec.with_params(algorithm, config, recompute_k, recompute_ratio))
        if not isinstance(prefix, str) or not isinstance(question, str):
            raise ValueError("prefix and question must be text")
        if not question.strip():
            raise ValueError("the question is empty: ask something")
        if chunks is None:
            chunks = ()
        if isinstance(chunks, str) or not all(isinstance(c, str) for c in chunks):
            raise ValueError("chunks must be a list of chunk keys")
        if not chunks:
            raise ValueError("no chunks chosen: pick at least one compiled chunk")
        if len(chunks) > config.max_chunks_per_request:
            raise ValueError(f"too many chunks: {len(chunks)} given, at most "
                             f"{config.max_chunks_per_request} per request")
        max_new_tokens = whole_number(max_new_tokens, "max_new_tokens", 1, config.max_new_tokens)
        temperature = real_number(temperature, "temperature", 0.0, 10.0)
        if seed is not None:
            seed = whole_number(seed, "seed", 0, 2**63 - 1)
        return cls(prefix, tuple(chunks), question, spec, max_new_tokens, temperature, seed)

    def with_algorithm(self, spec: AlgorithmSpec) -> Request:
        """The same prompt under another algorithm."""
        return replace(self, algorithm=spec)
