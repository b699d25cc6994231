"""Library tab handlers: compile documents into the visitor's library, look at it, evict and
clear its chunks; the operator's store-wide clear, save and load.

Plain functions of `(lab, session, *inputs)`, so tests and the UI call the same code. Bad input
raises `gr.Error` with a message; the store is only added to by a compile, so a refused
upload loses nothing already compiled. Every title shown goes through `render.md`.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from gradio.utils import get_upload_folder

from app.budget import Estimate, OverBudget, check_chars
from app.cost import Work, document_work
from app.errors import user_errors
from app.lab import Lab
from app.render import md, size_text
from app.uploads import Document, parse_files
from engine.prompt import encode_user_text
from engine.text import clean_title, title_of

STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Gradio finds a Progress default in a handler's signature and passes a live tracker per event;
# called directly (tests), this one does nothing.
PROGRESS = gr.Progress()
TABLE_HEADERS = ["title", "from", "tokens", "KV size", "hits", "last used", "key"]
OPERATOR_ONLY = "is for the operator of this app (start it with EPIC_OPERATOR=1)"


def check_work(lab: Lab, session: str, documents: list[Document]) -> Estimate:
    """Refuse a compile over the per-call or per-visitor limits before any model work ->
    its estimate (from the documents' own tokens, without chunk separators)."""
    limits, tokenizer = lab.limits, lab.engine.tokenizer
    if len(documents) > limits.compile_chunks:
        raise ValueError(f"{len(documents):,} documents in one call; at most "
                         f"{limits.compile_chunks} chunks may be compiled per call")
    chars = sum(len(doc.text) for doc in documents)
    if chars > limits.compile_chars:  # refused before anything tokenizes them
        raise OverBudget(f"{chars:,} characters of text in one call is over this app's limit "
                         f"of {limits.compile_chars:,} per compile: upload less at a time")
    tokens = [len(encode_user_text(tokenizer, doc.text)) for doc in documents]
    total = sum(tokens)
    chunks = sum(max(1, math.ceil(n / lab.engine.config.chunk_tokens)) for n in tokens)
    if total > limits.compile_tokens:
        raise ValueError(f"{total:,} tokens in one call is over this app's limit of "
                         f"{limits.compile_tokens:,} tokens per compile: upload less at a time")
    if chunks > limits.compile_chunks:
        raise ValueError(f"about {chunks:,} chunks in one call is over this app's limit of "
                         f"{limits.compile_chunks} per compile: upload less at a time")
    lab.libraries.check_room(session, total)
    layers, size = lab.engine.model.spec.num_layers, lab.engine.config.chunk_tokens
    work = sum((document_work(n, size, layers) for n in tokens), Work())
    return lab.estimator.estimate("compile", work, f"compiling {total:,} tokens",
                                  "compile a shorter text, or fewer documents at a time")


def _compile(lab: Lab, session: str, documents: list[Document],
             progress: gr.Progress) -> tuple[str, list[dict]]:
    engine = lab.engine
    estimate = lab.admission.within_budget(check_work(lab, session, documents))
    before = engine.store.stats().num_compiled
    compiled: list[dict] = []
    with lab.estimator.timed(estimate):
        for index, doc in enumerate(documents):
            progress((index, len(documents)), desc=f"compiling document {index + 1}")
            keys = engine.compile_document(doc.text, doc.title)
            for number, key in enumerate(keys, 1):
                # The visitor's own title (as compile_document names chunks): a chunk another
                # visitor compiled first keeps that visitor's title in the store.
                title = doc.title if len(keys) == 1 else f"{doc.title} #{number}"
                compiled.append({"title": title, "key": key, "tokens": _tokens(lab, key)})
    lab.libraries.add(session, [(c["key"], c["title"], c["tokens"]) for c in compiled])
    new = engine.store.stats().num_compiled - before
    text = (f"Compiled **{len(documents)}** document(s) into **{len(compiled)}** chunk(s): "
            f"{new} new, {len(compiled) - new} already in the store.")
    return text, compiled


@user_errors
def compile_files(lab: Lab, session: str, files: list[str] | None,
                  progress: gr.Progress = PROGRESS) -> tuple[str, list[dict]]:
    """Parse uploaded files and compile their chunks into your library -> (summary,
    [{title, key, tokens}]).

    The whole upload is parsed and checked against the limits before anything is compiled:
    one bad file refuses the upload, with a message naming the file, and changes nothing.
    The uploaded files are deleted from Gradio's cache once read.
    """
    limits = lab.documents
    if not files:
        raise ValueError("no files given: choose .txt, .md, .pdf, .json or .jsonl files")
    if len(files) > limits.max_files:
        raise ValueError(f"{len(files)} files given; at most {limits.max_files} per upload")
    loaded = []
    for path in files:
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"{file.name}: the uploaded file is gone: upload it again")
        if file.stat().st_size > limits.max_file_bytes:  # refuse before reading it
            raise ValueError(f"{file.name}: over the limit of "
                             f"{size_text(limits.max_file_bytes)} per file")
        loaded.append((file.name, file.read_bytes()))
    uploads = Path(get_upload_folder()).resolve()
    for path in files:  # read: Gradio's copy on disk is of no more use (and not ours to keep)
        if Path(path).resolve().is_relative_to(uploads):
            Path(path).unlink(missing_ok=True)
    return _compile(lab, session, parse_files(loaded, limits), progress)


def pasted(lab: Lab, text: Any, title: Any) -> Document:
    """Pasted text and its title as a document, bounded in characters before anything
    tokenizes them (OverBudget)."""
    check_chars(text, "pasted text", lab.limits.compile_chars)
    check_chars(title, "title", lab.limits.prompt_chars)
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the text is empty: paste a document first")
    name = clean_title(title if isinstance(title, str) else "") or title_of(text, 6)
    return Document(name, text)


@user_errors
def compile_text(lab: Lab, session: str, text: str, title: str = "",
                 progress: gr.Progress = PROGRESS) -> tuple[str, list[dict]]:
    """Compile pasted text as one document into your library -> (summary,
    [{title, key, tokens}])."""
    return _compile(lab, session, [pasted(lab, text, title)], progress)


def chunk_label(title: str, tokens: int, key: str) -> str:
    """How a chunk is named in pickers: title, size and the start of its key."""
    return f"{title} · {tokens} tok · {key[:8]}"


def _natural(title: str) -> list:
    # "Report #2" before "Report #10".
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", title)]


def _tokens(lab: Lab, key: str) -> int:
    """A chunk's token count, also when the store has evicted it (0 if it is forgotten)."""
    store = lab.engine.store
    try:
        return store.peek(key).num_tokens
    except KeyError:
        evicted = store.evicted_token_ids(key)
        return len(evicted[1]) if evicted else 0


def _entries(lab: Lab, session: str) -> list[tuple[str, str, int, bool]]:
    """(key, title, tokens, own) of every chunk the visitor may use: its own, then examples."""
    own = lab.libraries.get(session).chunks
    entries = [(key, title, tokens, True) for key, (title, tokens) in own.items()]
    for key, title in lab.example_titles.items():
        if key not in own:
            entries.append((key, title, _tokens(lab, key), False))
    return entries


def chunk_choices(lab: Lab, session: str) -> list[tuple[str, str]]:
    """(label, key) of every chunk the visitor may use, by title: a stable order."""
    entries = sorted(_entries(lab, session), key=lambda e: (_natural(e[1]), e[0]))
    return [(chunk_label(title, tokens, key), key) for key, title, tokens, _ in entries]


def own_choices(lab: Lab, session: str) -> list[tuple[str, str]]:
    """(label, key) of the visitor's own chunks: what it may evict."""
    return [(label, key) for label, key in chunk_choices(lab, session)
            if key in lab.libraries.get(session).chunks]


def library_table(lab: Lab, session: str) -> pd.DataFrame:
    """The visitor's chunks, most recently used first; evicted ones say so."""
    stored = {c.key: c for c in lab.engine.store.stats().chunks}
    rows = []
    for key, title, tokens, own in _entries(lab, session):
        info = stored.get(key)
        used = time.strftime("%H:%M:%S", time.localtime(info.last_used)) if info else "—"
        rows.append((info.last_used if info else 0.0,
                     [title, "you" if own else "example", tokens,
                      size_text(info.num_bytes) if info else "evicted",
                      info.hits if info else 0, used, key]))
    rows.sort(key=lambda r: -r[0])
    return pd.DataFrame([r for _, r in rows], columns=TABLE_HEADERS)


def library_summary(lab: Lab, session: str) -> str:
    """The visitor's share of the store, the store's totals, the prefix cache's."""
    stats, libraries = lab.engine.store.stats(), lab.libraries
    own = libraries.get(session).chunks
    gone = [title for key, (title, _) in own.items() if key not in lab.engine.store]
    text = (f"**Your library:** {len(own)} chunk(s) of yours + {len(lab.example_titles)} "
            f"examples · yours take **{size_text(libraries.used_bytes(session))}** of your "
            f"{size_text(libraries.share_bytes)} share  \n**Store (all visitors):** "
            f"{size_text(stats.num_bytes)} of {size_text(stats.budget_bytes)} · "
            f"{size_text(stats.bytes_per_token)} per token · {stats.num_compiled} compile "
            "passes")
    prefix = lab.engine.prefix_cache.stats()
    text += (f"  \nprefix_cache baseline: {prefix.num_entries} earlier request(s) kept, "
             f"{size_text(prefix.num_bytes)} of its own {size_text(prefix.budget_bytes)}")
    if stats.shared_status:  # local memory above, the Redis replicas share below
        text += (f"  \n**Shared store (replicas):** {md(lab.public(stats.shared_status))} · "
                 f"{size_text(stats.shared_bytes)} used of "
                 f"{size_text(stats.shared_budget_bytes) if stats.shared_budget_bytes else 'no'}"
                 f" maxmemory · {stats.num_fetched} chunk(s) read from other replicas")
    if stats.warning:
        text += f"  \n⚠️ {md(lab.public(stats.warning))}"
    if gone:
        text += ("  \nEvicted by the store (recompiled when a prompt uses them): "
                 + ", ".join(md(t) for t in gone[-5:]))
    return text


def store_stats(lab: Lab, session: str) -> tuple[pd.DataFrame, str]:
    """Your library as a table (title, from, tokens, KV size, hits, last used, key) and a
    summary line."""
    return library_table(lab, session), library_summary(lab, session)


def refresh_view(lab: Lab, session: str) -> tuple:
    """The visitor's library everywhere it shows: (table, summary, the Compose tab's picker
    choices, the evict picker's choices)."""
    table, summary = store_stats(lab, session)
    return (table, summary, gr.update(choices=chunk_choices(lab, session)),
            gr.update(choices=own_choices(lab, session)))


@user_errors
def evict(lab: Lab, session: str, key: str | None) -> str:
    """Drop one of your chunks (the store keeps it while another visitor holds it too)."""
    if not key or not isinstance(key, str):
        raise ValueError("choose one of your chunks to evict")
    if key not in lab.libraries.get(session).chunks:
        if key in lab.libraries.shared:
            raise ValueError("the examples are shared by every visitor: they cannot be evicted")
        raise KeyError(f"chunk {key!r} is not in your library")
    titles = lab.libraries.remove(session, [key])
    return f"Evicted {md(titles[0] or key)}."


def clear(lab: Lab, session: str) -> str:
    """Drop every chunk of yours; the examples stay."""
    count = len(lab.libraries.remove(session, list(lab.libraries.get(session).chunks)))
    return f"Cleared your {count} chunk(s); the examples stay."


@user_errors
def clear_store(lab: Lab, session: str, confirm: str) -> str:
    """Operator only: drop every chunk of every visitor; type CLEAR to confirm."""
    if not lab.limits.operator:
        raise ValueError(f"clearing the whole store {OPERATOR_ONLY}")
    if confirm != "CLEAR":
        raise ValueError("type CLEAR to confirm clearing every visitor's chunks")
    return f"Cleared {lab.libraries.clear_all()} chunk(s) from the store (every visitor)."


def store_dir(lab: Lab, name: str) -> Path:
    """Where the store named `name` is saved: always under the engine's cache directory."""
    name = name.strip() if isinstance(name, str) else ""
    if not STORE_NAME.fullmatch(name):
        raise ValueError("a store name is 1-64 letters, digits, '-' or '_' (no paths)")
    return Path(lab.engine.config.cache_dir) / "stores" / name


def saved_stores(lab: Lab) -> list[str]:
    """Names of the stores saved so far."""
    root = Path(lab.engine.config.cache_dir) / "stores"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@user_errors
def save_store(lab: Lab, session: str, name: str) -> str:
    """Operator only: save every chunk in the store under a name (replacing what it held)."""
    if not lab.limits.operator:
        raise ValueError(f"saving the store {OPERATOR_ONLY}")
    directory = store_dir(lab, name)
    count = lab.engine.store.save(directory)
    return f"Saved {count} chunk(s) to store '{directory.name}'."


@user_errors
def load_store(lab: Lab, session: str, name: str) -> str:
    """Operator only: load a saved store's chunks into your library; bad files are skipped
    and named."""
    if not lab.limits.operator:
        raise ValueError(f"loading a saved store {OPERATOR_ONLY}")
    directory = store_dir(lab, name)
    if not directory.is_dir():
        known = ", ".join(saved_stores(lab)) or "none yet"
        raise ValueError(f"no saved store named '{directory.name}' (saved: {known})")
    count, warnings = lab.engine.store.load(directory)
    keys = [f.stem for f in directory.glob("*.safetensors") if f.stem in lab.engine.store]
    chunks = [lab.engine.store.peek(key) for key in keys]
    lab.libraries.add(session, [(c.key, c.title, c.num_tokens) for c in chunks])
    text = f"Loaded {count} new chunk(s) from store '{directory.name}'."
    if warnings:
        text += "  \nSkipped: " + "; ".join(md(w) for w in warnings)
    return text
