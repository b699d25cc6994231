"""Algorithm labels and `AlgorithmSpec`: one algorithm with its settings, checked once.

A label is `name[-variant][-number]`: "naive", "legolink-16" (k = 16), "cacheblend-15" (ratio
0.15, written in percent), "cacheblend-key-15" (a variant of it). The number is the value of
the algorithm's first parameter (`LinkAlgorithm.label_parameter`); "legolink0" would be another
name, "legolink-0" is LegoLink with k = 0. The grammar is read here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.link.base import LinkAlgorithm
from engine.link.registry import REFERENCE, algorithm, algorithm_choices, parameter

LABEL = re.compile(r"(?P<name>[a-z][a-z0-9_]*)(?:-(?P<variant>[a-z][a-z0-9_]*))?"
                   r"(?:-(?P<number>\d+))?")


def split_label(label: str) -> tuple[str, str, str]:
    """"cacheblend-key-15" -> ("cacheblend", "key", "15"); "naive" -> ("naive", "", "").
    A ValueError when the text is no label (the name need not be registered)."""
    match = LABEL.fullmatch(label.strip()) if isinstance(label, str) else None
    if match is None:
        raise ValueError(f"{label!r} is not an algorithm label: name[-variant][-number], "
                         "e.g. legolink-16")
    return match["name"], match["variant"] or "", match["number"] or ""


@dataclass(frozen=True)
class AlgorithmSpec:
    """One registered algorithm, its variant ("" for none) and a value for each of its
    parameters, in their declared order. Make one with `of` or `parse` (they check it)."""

    name: str
    variant: str = ""
    values: tuple[tuple[str, float | int], ...] = ()  # (keyword, value) per parameter

    @property
    def algorithm(self) -> type[LinkAlgorithm]:
        return algorithm(self.name)

    @property
    def label(self) -> str:
        """"legolink-16", "cacheblend-15", "naive": the name everywhere (UI, API, files)."""
        labelled = self.algorithm.label_parameter()
        number = [labelled.write(self[labelled.keyword])] if labelled else []
        return "-".join([self.name, *([self.variant] if self.variant else []), *number])

    def __getitem__(self, keyword: str) -> float | int:
        for key, value in self.values:
            if key == keyword:
                return value
        raise KeyError(f"{self.name} takes no parameter {keyword!r}")

    @classmethod
    def of(cls, label: str | AlgorithmSpec, **given: Any) -> AlgorithmSpec:
        """A name or a label, and parameter values by keyword (None: the declared default).
        Every value given is checked, those of other algorithms too (bad input is refused
        wherever it is, not ignored); the algorithm takes its own. A ValueError names the
        first problem."""
        if isinstance(label, AlgorithmSpec):
            return label
        checked = {}
        for key, value in given.items():
            declared = parameter(key)  # an unknown keyword is refused even without a value
            if value is not None:
                checked[key] = declared.check(value)
        text = label.strip() if isinstance(label, str) else label
        if not isinstance(text, str) or "-" not in text:
            algorithm_class = algorithm(text)
            name, variant, number = text, "", ""
        else:
            algorithm_class = algorithm(text.partition("-")[0])
            name, variant, number = split_label(text)
        if variant and variant not in algorithm_class.variants:
            choices = ", ".join(algorithm_class.variants) or "none"
            raise ValueError(f"{name} has no variant {variant!r} (its variants: {choices})")
        labelled = algorithm_class.label_parameter()
        if number:
            if labelled is None:
                raise ValueError(f"{name} takes no parameter, got {text!r}")
            if labelled.keyword in checked:
                raise ValueError(f"{labelled.keyword} given twice: in {text!r} and as "
                                 f"{labelled.keyword}={given[labelled.keyword]!r}")
            checked[labelled.keyword] = labelled.read(number)
        values = tuple((p.keyword, checked.get(p.keyword, p.check(p.default)))
                       for p in algorithm_class.parameters)
        return cls(name, variant, values)

    @classmethod
    def parse(cls, label: str) -> AlgorithmSpec:
        """"legolink-16" -> legolink with k = 16; a plain name takes the defaults."""
        return cls.of(label)


def parse_algorithms(specs: str | Iterable[str | AlgorithmSpec]) -> list[AlgorithmSpec]:
    """A comma-separated string or a list of labels (or specs) -> specs, the reference first
    (added if missing); the same label twice is refused."""
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    parsed = [s if isinstance(s, AlgorithmSpec) else AlgorithmSpec.parse(s)
              for s in items if isinstance(s, AlgorithmSpec) or s.strip()]
    labels = [p.label for p in parsed]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"algorithms given twice: {', '.join(duplicates)}")
    reference = [p for p in parsed if p.name == REFERENCE] or [AlgorithmSpec(REFERENCE)]
    return reference + [p for p in parsed if p.name != REFERENCE]


def label_forms() -> list[str]:
    """How a label writes each registered algorithm (and each variant), with what its number
    means: "legolink-16 (k: tokens recomputed per chunk: 0..1024, default 16)"."""
    forms = []
    for choice in algorithm_choices():
        spec = AlgorithmSpec.of(choice)
        labelled = spec.algorithm.label_parameter()
        if labelled is None:
            forms.append(spec.label)
            continue
        low, high, default = (labelled.write(v)
                              for v in (labelled.low, labelled.high, labelled.default))
        percent = " in percent" if labelled.kind == "percent" else ""
        forms.append(f"{spec.label} ({labelled.label}{percent}: {low}..{high}, default "
                     f"{default})")
    return forms
