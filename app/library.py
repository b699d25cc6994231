"""Library tab handlers: compile documents into the visitor's library, look at it, evict and
clear its chunks (the operator's store-wide clear, save and load: app/stores.py).

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
from app.errors import user_errors
from app.lab import Lab
from app.progress import compile_plan
from app.render import md, size_text
from app.uploads import Document, parse_files
from engine import chunk_titles, clean_title, encode_user_text, title_of

# Gradio finds a Progress default in a handler's signature and passes a live tracker per event;
# called directly (tests), this one does nothing.
PROGRESS = gr.Progress()
TABLE_HEADERS = ["title", "from", "tokens", "KV size", "hits", "last used", "key"]


def check_work(lab: Lab, session: str, documents: list[Document]) -> Estimate:
    """Refuse a compile over the per-call or per-visitor limits before any model work ->
    its estimate: the work of the chunks not held yet under the visitor's salt only (a
    re-upload costs nothing; app/progress.py). The limits count every token sent."""
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
    plan = compile_plan(lab.engine, [doc.text for doc in documents],
                        lab.libraries.salt(session))
    return lab.estimator.estimate("compile", plan.work, plan.describe(),
                                  "compile a shorter text, or fewer documents at a time")


def _compile(lab: Lab, session: str, documents: list[Document],
             progress: gr.Progress) -> tuple[str, list[dict]]:
    """Compile under the visitor's salt, into its library (held for the call: a newcomer is
    refused here when the lab is full) -> (summary, chunks). The counts are this call's own:
    a chunk is new unless the visitor's library held it already (another visitor's copy of
    the same text is another chunk, compiled afresh)."""
    engine, libraries = lab.engine, lab.libraries
    with libraries.holding(session) as library:
        estimate = lab.admission.within_budget(check_work(lab, session, documents))
        salt, before = libraries.salt(session), set(library.chunks)
        compiled: list[dict] = []
        with lab.estimator.timed(estimate):
            for index, doc in enumerate(documents):
                progress((index, len(documents)), desc=f"compiling document {index + 1}")
                keys = engine.compile_document(doc.text, doc.title, salt)
                for key, title in zip(keys, chunk_titles(doc.title, len(keys)), strict=True):
                    compiled.append({"title": title, "key": key, "tokens": _tokens(lab, key)})
        libraries.add(session, [(c["key"], c["title"], c["tokens"]) for c in compiled])
        new = len({c["key"] for c in compiled} - before)
        library.num_compiled += new
    text = (f"Compiled **{len(documents)}** document(s) into **{len(compiled)}** chunk(s): "
            f"{new} new, {len(compiled) - new} already in your library.")
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
    limits = lab.upload_limits
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
    if len(text) > lab.upload_limits.max_chars:
        raise ValueError(f"{len(text):,} characters is over the limit of "
                         f"{lab.upload_limits.max_chars:,}")
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


def kv_size(lab: Lab, key: str, num_bytes: int) -> str:
    """A chunk's KV size, with its variant copies' (LegoLink-0's, APE's), which are no
    documents of their own: they are listed with, counted with and dropped with their chunk."""
    copies = lab.engine.store.variant_bytes(key)
    return size_text(num_bytes) + (f" + {size_text(copies)} variant copy" if copies else "")


def library_table(lab: Lab, session: str) -> pd.DataFrame:
    """The visitor's chunks, most recently used first, then the examples; evicted ones say
    so. Hits and last use are shown for the visitor's own chunks only (nobody else uses
    them): an example's would tell when others used it."""
    stored = {c.key: c for c in lab.engine.store.stats().chunks if not c.variant}
    rows = []
    for key, title, tokens, own in _entries(lab, session):
        info = stored.get(key)
        mine = info is not None and own
        used = time.strftime("%H:%M:%S", time.localtime(info.last_used)) if mine else "—"
        rows.append((info.last_used if mine else 0.0,
                     [title, "you" if own else "example", tokens,
                      kv_size(lab, key, info.num_bytes) if info else "evicted",
                      info.hits if mine else "—", used, key]))
    rows.sort(key=lambda r: -r[0])
    return pd.DataFrame([r for _, r in rows], columns=TABLE_HEADERS)


def library_summary(lab: Lab, session: str) -> str:
    """The visitor's own numbers: its chunks, its share of the store, its compile passes and
    its requests prefix_cache keeps (the store's totals, which move when others compile, only
    for the operator)."""
    stats, libraries = lab.engine.store.stats(), lab.libraries
    library = libraries.get(session)
    own = library.chunks
    gone = [title for key, (title, _) in own.items() if key not in lab.engine.store]
    prefix = lab.engine.prefix_cache.stats(libraries.salt(session))
    text = (f"**Your library:** {len(own)} chunk(s) of yours + {len(lab.example_titles)} "
            f"examples · yours take **{size_text(libraries.used_bytes(session))}** of your "
            f"{size_text(libraries.share_bytes)} share ({size_text(stats.bytes_per_token)} per "
            f"token) · {library.num_compiled} compile pass(es) of yours  \nprefix_cache "
            f"baseline: {prefix.num_entries} earlier request(s) of yours kept, "
            f"{size_text(prefix.num_bytes)}")
    if not lab.limits.operator:
        return _warnings(lab, text, stats.warning, gone)
    text += (f"  \n**Store (all visitors):** {size_text(stats.num_bytes)} of "
             f"{size_text(stats.budget_bytes)} · {stats.num_compiled} compile passes · "
             f"{len(libraries.sessions())} libraries held · prefix_cache "
             f"{lab.engine.prefix_cache.stats().num_entries} request(s)")
    if stats.shared_status:  # local memory above, the Redis replicas share below
        text += (f"  \n**Shared store (replicas):** {md(lab.public(stats.shared_status))} · "
                 f"{size_text(stats.shared_bytes)} used of "
                 f"{size_text(stats.shared_budget_bytes) if stats.shared_budget_bytes else 'no'}"
                 f" maxmemory · {stats.num_fetched} chunk(s) read from other replicas")
    return _warnings(lab, text, stats.warning, gone)


def _warnings(lab: Lab, text: str, warning: str, gone: list[str]) -> str:
    if warning:
        text += f"  \n⚠️ {md(lab.public(warning))}"
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
