"""Benchmark data: the shared schema, one example a line —
`{"id", "dataset", "task", "chunks": [...], "question", "answers": [...]}` — read and checked,
and the JSON helpers that name the line or item that is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.metrics import TASKS


class DataError(ValueError):
    """Data that cannot be used; the message names the file (and line) and the problem."""


def json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), "null")


def load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON ({err.msg} at line {err.lineno}, "
                            f"column {err.colno})") from err
    except RecursionError as err:  # "[[[[..." a million deep
        raise DataError(f"{where}: JSON nested too deeply") from err


def string_list(item: dict[str, Any], key: str, where: str) -> list[str]:
    value = item.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DataError(f'{where}: "{key}" must be a non-empty list of strings')
    return value


def examples_from_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a benchmark file in the shared schema, one example a line, each validated.

    Required: "chunks" (non-empty list of strings), "question" (string), "answers" (non-empty
    list of strings). Defaults: "task" "qa" (else one of `metrics.TASKS`), "dataset" the
    file's stem, "id" "<stem>-<line>". Other keys are kept. Raises `DataError`.
    """
    path = Path(path)
    examples = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {lineno}"
        item = load_json(line, where)
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a JSON object, got {json_type(item)}")
        chunks = string_list(item, "chunks", where)
        answers = string_list(item, "answers", where)
        if not isinstance(item.get("question"), str):
            raise DataError(f'{where}: "question" must be a string')
        task = item.get("task", "qa")
        if task not in TASKS:
            raise DataError(f'{where}: "task" must be one of {", ".join(TASKS)}, got {task!r}')
        examples.append({**item, "id": str(item.get("id", f"{path.stem}-{lineno}")),
                         "dataset": str(item.get("dataset", path.stem)), "task": task,
                         "chunks": chunks, "question": item["question"], "answers": answers})
    if not examples:
        raise DataError(f"{path.name}: holds no examples")
    return examples




def passages_from_examples(examples: list[dict[str, Any]]) -> list[str]:
    """Every distinct chunk of the examples, in file order: material for synthetic prompts."""
    return list(dict.fromkeys(c for e in examples for c in e["chunks"] if c.strip()))
