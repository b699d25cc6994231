"""The bundled assets: example documents (their KV compiled once and kept beside the model
cache, so later starts load it instead of compiling), prefix presets, the example request and
the small benchmark files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.uploads import Document
from engine import Engine

log = logging.getLogger(__name__)
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
    story_prefixes: list[str]  # two keys of `prefixes`: the guided story's system prompts
    story_documents: list[str]  # the story's documents, in its first order


def load_presets() -> Presets:
    """Read assets/presets.json."""
    data = json.loads((ASSETS / "presets.json").read_text(encoding="utf-8"))
    example, story = data["example"], data["story"]
    return Presets(data["prefixes"], data["questions"], example["prefix"],
                   example["documents"], example["question"], example["algorithms"],
                   story["prefixes"], story["documents"])


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


def examples_dir(engine: Engine) -> Path:
    """Where this model's example KV is kept: beside the converted model, under a name that
    changes with the model, the dtype, the chunk budget and the documents."""
    digest = hashlib.sha256()
    for part in (engine.model.model_id, engine.config.dtype, str(engine.config.chunk_tokens)):
        digest.update(part.encode() + b"\0")
    for name, doc in example_documents().items():
        digest.update(f"{name}\0{doc.text}\0".encode())
    return Path(engine.config.cache_dir) / "examples" / digest.hexdigest()[:16]


def _write_json(path: Path, value: Any) -> None:
    """Write JSON to a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def open_examples(engine: Engine, persist: bool = True) -> dict[str, list[str]]:
    """The examples' chunk keys, their KV in the store: loaded from the files an earlier start
    wrote (when every chunk loads), else compiled and, if `persist`, written for next time."""
    directory = examples_dir(engine)
    manifest = directory / "manifest.json"
    names = list(example_documents())
    if persist and manifest.is_file():
        try:
            keys = json.loads(manifest.read_text(encoding="utf-8"))["documents"]
            engine.store.load(directory)
            if sorted(keys) == sorted(names) and all(
                    key in engine.store for name in names for key in keys[name]):
                return {name: list(keys[name]) for name in names}
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.warning("example KV in %s not used (%s): compiling again", directory, err)
    keys = compile_examples(engine)
    if persist:
        directory.mkdir(parents=True, exist_ok=True)
        engine.store.save(directory, keys=[k for name in names for k in keys[name]])
        _write_json(manifest, {"model": engine.model.model_id, "documents": keys})
    return keys


def load_story(engine: Engine) -> dict[str, Any] | None:
    """The guided story's results saved by an earlier start, or None."""
    path = examples_dir(engine) / "story.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def save_story(engine: Engine, story: dict[str, Any]) -> None:
    """Keep the story's results (plain numbers and texts) for the next start's first page."""
    directory = examples_dir(engine)
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / "story.json", story)
