"""Uploads -> documents: .txt, .md, .pdf, .json and .jsonl files, parsed within limits.

Nothing about an upload is trusted. Its name is cut to a clean base name, used only as a title
and to pick the parser, never as a path; its bytes are checked for size, binary content, PDF
structure and JSON shape. Every refusal is a `DocumentError` naming the file and the problem.

Text decoding: UTF-16 or UTF-8 where a byte order mark says so; else NUL bytes mean binary;
else UTF-8, else Windows-1252 (Latin-1 with quotes and dashes in 0x80-0x9F), else Latin-1.
Decoded text with over 1 control character in 50 (tab, newline, CR, FF aside) is binary.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from engine.metrics import TASKS

MIB = 1024 * 1024
ACCEPTED_EXTENSIONS = (".txt", ".md", ".pdf", ".json", ".jsonl")
MAX_TITLE_CHARS = 120
MAX_CONTROL_SHARE = 1 / 50
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # Unicode Cc minus \t \n \v \f \r
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass(frozen=True)
class Document:
    """One document to chunk and compile: a title to show and its text."""

    title: str
    text: str


@dataclass(frozen=True)
class DocumentLimits:
    """Bytes per file, files per upload, and characters of text per file and per upload."""

    max_file_bytes: int = 5 * MIB
    max_files: int = 20
    max_chars: int = 2_000_000


class DocumentError(ValueError):
    """An upload that cannot be used; the message names the file and what is wrong with it."""


def clean_title(text: str) -> str:
    """`text` fit to show as a title: no control or bidi characters, one line, at most 120."""
    title = " ".join(_INVISIBLE.sub("", text).split())
    if len(title) > MAX_TITLE_CHARS:
        suffix = Path(title).suffix
        suffix = suffix if len(suffix) <= 10 else ""  # keep a file's extension visible
        title = title[: MAX_TITLE_CHARS - 1 - len(suffix)] + "…" + suffix
    return title


def safe_name(name: str) -> str:
    """An uploaded file's base name as a clean title: both path separators and all control
    characters gone, so "../../etc/passwd.txt" -> "passwd.txt"; "unnamed" if nothing is left."""
    return clean_title(re.split(r"[\\/]", name)[-1]) or "unnamed"


def parse_file(name: str, data: bytes, limits: DocumentLimits = DocumentLimits()) -> list[Document]:
    """Parse one uploaded file into documents, by the extension of its base name.

    .txt and .md: one document. .pdf: one document, the pages' text. .json: an object in the
    shared data schema (each of its "chunks" becomes a document titled "<id> #<n>"), an object
    {"title", "text"}, or a list of these. .jsonl: one such object a line. Blank texts and
    chunks are skipped. Raises `DocumentError` for anything unusable.
    """
    title = safe_name(name)
    extension = Path(title).suffix.lower()
    if extension not in ACCEPTED_EXTENSIONS:
        raise DocumentError(f"{title}: unsupported file type {extension or '(no extension)'}; "
                            f"accepted: {', '.join(ACCEPTED_EXTENSIONS)}")
    if not data:
        raise DocumentError(f"{title}: the file is empty")
    if len(data) > limits.max_file_bytes:
        raise DocumentError(f"{title}: {_size(len(data))} is over the limit of "
                            f"{_size(limits.max_file_bytes)} per file")
    if extension == ".pdf":
        documents = [Document(title, _pdf_text(title, data, limits.max_chars))]
    else:
        text = _decode(title, data)
        parser = {".json": _json_documents, ".jsonl": _jsonl_documents}.get(extension)
        documents = parser(title, text) if parser else [Document(title, text)]
    documents = [doc for doc in documents if doc.text.strip()]
    if not documents:
        raise DocumentError(f"{title}: the file is empty (it holds no text)")
    _check_chars(title, sum(len(doc.text) for doc in documents), limits.max_chars, "file")
    return documents


def parse_files(files: list[tuple[str, bytes]],
                limits: DocumentLimits = DocumentLimits()) -> list[Document]:
    """Parse an upload of `(name, bytes)` files; the first bad file raises `DocumentError`."""
    if len(files) > limits.max_files:
        raise DocumentError(f"{len(files)} files given; at most {limits.max_files} per upload")
    documents: list[Document] = []
    total = 0
    for name, data in files:
        parsed = parse_file(name, data, limits)
        total += sum(len(doc.text) for doc in parsed)
        _check_chars(safe_name(name), total, limits.max_chars, "upload")
        documents.extend(parsed)
    return documents


def examples_from_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a benchmark file in the shared schema, one example a line, each validated.

    Required: "chunks" (non-empty list of strings), "question" (string), "answers" (non-empty
    list of strings). Defaults: "task" "qa" (else one of `metrics.TASKS`), "dataset" the
    file's stem, "id" "<stem>-<line>". Other keys are kept. Raises `DocumentError`.
    """
    path = Path(path)
    examples = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path.name} line {lineno}"
        item = _load_json(line, where)
        if not isinstance(item, dict):
            raise DocumentError(f"{where}: expected a JSON object, got {_json_type(item)}")
        chunks = _string_list(item, "chunks", where)
        answers = _string_list(item, "answers", where)
        if not isinstance(item.get("question"), str):
            raise DocumentError(f'{where}: "question" must be a string')
        task = item.get("task", "qa")
        if task not in TASKS:
            raise DocumentError(f'{where}: "task" must be one of {", ".join(TASKS)}, got {task!r}')
        examples.append({**item, "id": str(item.get("id", f"{path.stem}-{lineno}")),
                         "dataset": str(item.get("dataset", path.stem)), "task": task,
                         "chunks": chunks, "question": item["question"], "answers": answers})
    if not examples:
        raise DocumentError(f"{path.name}: holds no examples")
    return examples


def _size(num_bytes: int) -> str:
    return f"{num_bytes / MIB:.1f} MiB" if num_bytes >= MIB else f"{num_bytes:,} bytes"


def _check_chars(title: str, chars: int, limit: int, scope: str) -> None:
    if chars > limit:
        raise DocumentError(f"{title}: {chars:,} characters of text is over the limit of "
                            f"{limit:,} per {scope}")


def _decode(title: str, data: bytes) -> str:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as err:
                raise DocumentError(f"{title}: not valid {codec.removesuffix('-sig').upper()} "
                                    f"text despite its byte order mark") from err
            break
    else:
        if b"\x00" in data:  # no text encoding but UTF-16/32 (which need a BOM here) has NULs
            raise DocumentError(f"{title}: looks binary (it contains NUL bytes), not text")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:  # cp1252 leaves 5 bytes undefined; Latin-1 takes any
                text = data.decode("latin-1")
    controls = len(_CONTROL.findall(text))
    if "\x00" in text or controls > MAX_CONTROL_SHARE * len(text):
        raise DocumentError(f"{title}: looks binary ({controls:,} control characters in "
                            f"{len(text):,}), not text")
    return text


def _pdf_text(title: str, data: bytes, max_chars: int) -> str:
    pages: list[str] = []
    chars = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{title}: the PDF is password-protected")
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            chars += len(pages[-1])
            # Stop early: a few MiB of compressed streams can hold far more text than allowed.
            _check_chars(title, chars, max_chars, "file")
    except DocumentError:
        raise
    except Exception as err:  # pypdf raises many types on malformed input; all mean unreadable
        raise DocumentError(f"{title}: not a readable PDF ({str(err)[:120]})") from err
    text = "\n\n".join(pages)
    if not text.strip():
        raise DocumentError(f"{title}: the PDF has no extractable text (scanned pages need OCR)")
    return text


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), "null")


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DocumentError(f"{where}: not valid JSON ({err.msg} at line {err.lineno}, "
                            f"column {err.colno})") from err
    except RecursionError as err:  # "[[[[..." a million deep
        raise DocumentError(f"{where}: JSON nested too deeply") from err


def _string_list(item: dict[str, Any], key: str, where: str) -> list[str]:
    value = item.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise DocumentError(f'{where}: "{key}" must be a non-empty list of strings')
    return value


def _json_documents(title: str, text: str) -> list[Document]:
    value = _load_json(text, title)
    if isinstance(value, list):
        return [doc for index, item in enumerate(value, 1)
                for doc in _item_documents(item, f"{title} item {index}")]
    return _item_documents(value, title)


def _jsonl_documents(title: str, text: str) -> list[Document]:
    documents = []
    # split("\n"), not splitlines(): U+2028 and friends may stand unescaped inside JSON strings.
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.strip():
            where = f"{title} line {lineno}"
            documents.extend(_item_documents(_load_json(line, where), where))
    return documents


def _item_documents(item: Any, where: str) -> list[Document]:
    """A shared-schema example -> one document per chunk; {"title", "text"} -> one document.
    `where` ("f.json item 2") names the item in errors and stands in for a missing title."""
    if isinstance(item, dict) and "chunks" in item:
        chunks = _string_list(item, "chunks", where)
        example_id = item.get("id")
        name = clean_title(str(example_id)) if isinstance(example_id, str | int) else ""
        return [Document(f"{name or where} #{n}", chunk) for n, chunk in enumerate(chunks, 1)]
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        given = item.get("title")
        shown = clean_title(given) if isinstance(given, str) else ""
        return [Document(shown or where, item["text"])]
    got = _json_type(item)
    if isinstance(item, dict):  # keys come from the upload: shortened, repr() escapes them
        got += " with keys " + ", ".join(repr(key[:30]) for key in list(item)[:5])
    raise DocumentError(f'{where}: expected an object with "chunks" (the dataset schema) or '
                        f'"text" (and "title"), got {got}')
