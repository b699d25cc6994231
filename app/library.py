"""Library tab handlers: upload and compile documents, inspect, evict, save and load the store.

Plain functions over an Engine, so tests and the UI call the same code. Bad input raises
`gr.Error` with the engine's message; the store is only ever added to by a compile, so a
refused upload loses nothing already compiled.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from app.errors import user_errors
from app.uploads import Document, DocumentLimits, parse_files
from engine import Engine

LIMITS = DocumentLimits()
STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Gradio finds a Progress default in a handler's signature and passes a live tracker per event;
# called directly (tests), this one does nothing.
PROGRESS = gr.Progress()
TABLE_HEADERS = ["title", "key", "tokens", "KV size", "device", "hits", "last used"]


def size_text(num_bytes: int) -> str:
    """Bytes in the unit a person reads best."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes} B"


def _compile_documents(engine: Engine, documents: list[Document],
                       progress: gr.Progress) -> tuple[str, list[dict]]:
    before = engine.store.stats().num_compiled
    compiled: list[dict] = []
    for index, doc in enumerate(documents):
        progress((index, len(documents)), desc=f"compiling {doc.title}")
        for key in engine.compile_document(doc.text, doc.title):
            chunk = engine.store.peek(key)
            compiled.append({"title": chunk.title, "key": key, "tokens": chunk.num_tokens})
    new = engine.store.stats().num_compiled - before
    reused = len(compiled) - new
    text = (f"Compiled **{len(documents)}** document(s) into **{len(compiled)}** chunk(s): "
            f"{new} new, {reused} already in the store.")
    return text, compiled


@user_errors
def compile_files(engine: Engine, paths: list[str] | None,
                  progress: gr.Progress = PROGRESS) -> tuple[str, list[dict]]:
    """Parse uploaded files and compile their chunks -> (summary, [{title, key, tokens}]).

    The whole upload is parsed before anything is compiled: one bad file refuses the upload,
    with a message naming the file, and leaves the store as it was.
    """
    if not paths:
        raise ValueError("no files given: choose .txt, .md, .pdf, .json or .jsonl files")
    if len(paths) > LIMITS.max_files:
        raise ValueError(f"{len(paths)} files given; at most {LIMITS.max_files} per upload")
    files = []
    for path in paths:
        file = Path(path)
        if file.stat().st_size > LIMITS.max_file_bytes:  # refuse before reading it into memory
            raise ValueError(f"{file.name}: over the limit of {size_text(LIMITS.max_file_bytes)}"
                             " per file")
        files.append((file.name, file.read_bytes()))
    documents = parse_files(files, LIMITS)
    return _compile_documents(engine, documents, progress)


@user_errors
def compile_text(engine: Engine, text: str, title: str = "",
                 progress: gr.Progress = PROGRESS) -> tuple[str, list[dict]]:
    """Compile pasted text as one document -> (summary, [{title, key, tokens}])."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty: paste a document first")
    if len(text) > LIMITS.max_chars:
        raise ValueError(f"{len(text):,} characters is over the limit of {LIMITS.max_chars:,}")
    name = " ".join((title or "").split())[:120] or " ".join(text.split()[:6])
    return _compile_documents(engine, [Document(name, text)], progress)


def chunk_label(title: str, tokens: int, key: str) -> str:
    """How a chunk is named in pickers: title, size and the start of its key."""
    return f"{title} · {tokens} tok · {key[:8]}"


def _natural(title: str) -> list:
    # "Report #2" before "Report #10".
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", title)]


def chunk_choices(engine: Engine) -> list[tuple[str, str]]:
    """(label, key) of every stored chunk, by title: a stable order while hits change."""
    infos = sorted(engine.store.stats().chunks, key=lambda c: (_natural(c.title), c.key))
    return [(chunk_label(c.title, c.num_tokens, c.key), c.key) for c in infos]


def store_table(engine: Engine) -> pd.DataFrame:
    """The cache inspector: one row per chunk, most recently used first."""
    rows = []
    for c in reversed(engine.store.stats().chunks):
        used = time.strftime("%H:%M:%S", time.localtime(c.last_used))
        rows.append([c.title, c.key, c.num_tokens, size_text(c.num_bytes), c.device, c.hits,
                     used])
    return pd.DataFrame(rows, columns=TABLE_HEADERS)


def store_summary(engine: Engine) -> str:
    """Totals against the budget, and the chunks evicted most recently."""
    stats = engine.store.stats()
    share = stats.num_bytes / stats.budget_bytes
    text = (f"**{stats.num_chunks}** chunks · **{size_text(stats.num_bytes)}** of "
            f"{size_text(stats.budget_bytes)} budget ({share:.1%}) · "
            f"{size_text(stats.bytes_per_token)} per token · {stats.num_compiled} compile passes")
    prefix = engine.prefix_cache.stats()
    text += (f"  \nprefix_cache baseline: {prefix.num_entries} earlier request(s) kept, "
             f"{size_text(prefix.num_bytes)} of its own {size_text(prefix.budget_bytes)} budget")
    if stats.shared_status:  # local memory above, the Redis replicas share below
        text += (f"  \nShared store: {html.escape(stats.shared_status)} · "
                 f"{size_text(stats.shared_bytes)} used of "
                 f"{size_text(stats.shared_budget_bytes) if stats.shared_budget_bytes else 'no'}"
                 f" maxmemory · {stats.num_fetched} chunk(s) read from other replicas")
    if stats.warning:
        text += f"  \n⚠️ {html.escape(stats.warning)}"
    if stats.evicted:
        recent = ", ".join(f"{title or key[:8]}" for key, title in reversed(stats.evicted[-5:]))
        text += f"  \nRecently evicted: {recent}"
    return text


def store_stats(engine: Engine) -> tuple[pd.DataFrame, str]:
    """The inspector table and its summary line."""
    return store_table(engine), store_summary(engine)


@user_errors
def evict(engine: Engine, key: str | None) -> str:
    """Drop one chunk from the store."""
    if not key:
        raise ValueError("choose a chunk to evict")
    title = engine.store.peek(key).title
    engine.store.evict(key)
    return f"Evicted {title or key}."


def clear(engine: Engine) -> str:
    """Drop every chunk from the store."""
    count = len(engine.store)
    engine.store.clear()
    return f"Cleared {count} chunk(s)."


def store_dir(engine: Engine, name: str) -> Path:
    """Where the store named `name` is saved: always under the engine's cache directory."""
    name = (name or "").strip()
    if not STORE_NAME.fullmatch(name):
        raise ValueError("a store name is 1-64 letters, digits, '-' or '_' (no paths)")
    return Path(engine.config.cache_dir) / "stores" / name


def saved_stores(engine: Engine) -> list[str]:
    """Names of the stores saved so far."""
    root = Path(engine.config.cache_dir) / "stores"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@user_errors
def save_store(engine: Engine, name: str) -> str:
    """Save every chunk to the named store (replacing what it held)."""
    directory = store_dir(engine, name)
    count = engine.store.save(directory)
    return f"Saved {count} chunk(s) to store '{directory.name}'."


@user_errors
def load_store(engine: Engine, name: str) -> str:
    """Load the named store's chunks; corrupt files are skipped and reported."""
    directory = store_dir(engine, name)
    if not directory.is_dir():
        known = ", ".join(saved_stores(engine)) or "none yet"
        raise ValueError(f"no saved store named '{directory.name}' (saved: {known})")
    count, warnings = engine.store.load(directory)
    text = f"Loaded {count} new chunk(s) from store '{directory.name}'."
    if warnings:
        text += "  \nSkipped: " + "; ".join(warnings)
    return text
