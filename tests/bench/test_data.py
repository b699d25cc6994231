"""Benchmark files in the shared schema: defaults filled in, every line checked."""

from __future__ import annotations

import json

import pytest

from bench.data import DataError, examples_from_jsonl

EXAMPLE = {"id": "ex1", "dataset": "hotpotqa", "task": "qa",
           "chunks": ["First passage.", "Second."], "question": "Which?", "answers": ["First"]}


def test_examples_from_jsonl_fills_defaults(tmp_path):
    path = tmp_path / "mini.jsonl"
    bare = {"chunks": ["c"], "question": "q?", "answers": ["a"], "extra": 1}
    path.write_text(json.dumps(EXAMPLE) + "\n\n" + json.dumps(bare) + "\n", encoding="utf-8")
    first, second = examples_from_jsonl(path)
    assert first == EXAMPLE
    assert second == {**bare, "id": "mini-3", "dataset": "mini", "task": "qa"}


@pytest.mark.parametrize(("line", "match"), [
    ('{"chunks": ["c"], "answers": ["a"]}', r"line 2: \"question\" must be a string"),
    ('{"chunks": ["c"], "question": "q", "answers": []}', r"line 2: \"answers\" must be"),
    ('{"chunks": ["c"], "question": "q", "answers": ["a"], "task": "chat"}',
     r"line 2: \"task\" must be one of qa"),
    ("[1, 2]", "line 2: expected a JSON object, got a list"),
    ('{"chunks": ', "line 2: not valid JSON"),
])
def test_examples_from_jsonl_validates_each_line(tmp_path, line, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(EXAMPLE) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"bad\.jsonl {match}"):
        examples_from_jsonl(path)


def test_examples_from_empty_file(tmp_path):
    path = tmp_path / "none.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="holds no examples"):
        examples_from_jsonl(path)
