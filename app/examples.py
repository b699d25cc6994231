"""The bundled assets: example documents compiled at start-up, prefix presets, the one-click
example request and the small benchmark files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from app.uploads import Document
from engine import Engine

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BENCH_DATASETS = {
    "HotpotQA sample (5 examples)": ASSETS / "bench" / "hotpotqa_sample.jsonl",
    "Example documents QA (5 examples)": ASSETS / "bench" / "example_docs_qa.jsonl",
}


@dataclass(frozen=True)
class Presets:
    """Prefix presets (name -> text), sample questions and the example request."""

    prefixes: dict[str, str]
    questions: list[str]
    example_prefix: str  # a key of `prefixes`
    example_documents: list[str]  # file names under assets/documents, in prompt order
    example_question: str
    example_algorithms: list[str]


def load_presets() -> Presets:
    """Read assets/presets.json."""
    data = json.loads((ASSETS / "presets.json").read_text(encoding="utf-8"))
    example = data["example"]
    return Presets(data["prefixes"], data["questions"], example["prefix"],
                   example["documents"], example["question"], example["algorithms"])


def example_documents() -> dict[str, Document]:
    """File name -> document; the title is the file's first line without its '#'."""
    documents = {}
    for path in sorted((ASSETS / "documents").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        documents[path.name] = Document(text.splitlines()[0].lstrip("# ").strip(), text)
    return documents


def compile_examples(engine: Engine, names: list[str] | None = None) -> dict[str, list[str]]:
    """Compile the example documents (all, or those named) -> file name -> chunk keys.

    Already compiled chunks are found by content, so calling this again compiles only what
    was evicted or cleared since.
    """
    documents = example_documents()
    chosen = names if names is not None else list(documents)
    return {name: engine.compile_document(documents[name].text, documents[name].title)
            for name in chosen}


def example_request(engine: Engine, presets: Presets) -> tuple[str, list[str], str, list[str]]:
    """The one-click example -> (prefix, chunk keys in order, question, algorithms).

    Several documents behind a system prompt: under naive linking every document but the
    first opens with a false attention sink, which is what the Inspect tab shows.
    """
    keys = compile_examples(engine, presets.example_documents)
    chunks = [key for name in presets.example_documents for key in keys[name]]
    return (presets.prefixes[presets.example_prefix], chunks, presets.example_question,
            list(presets.example_algorithms))
