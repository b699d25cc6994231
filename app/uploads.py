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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from bench.data import DataError, json_type, load_json, string_list
from engine import clean_title

MIB = 1024 * 1024
ACCEPTED_EXTENSIONS = (".txt", ".md", ".pdf", ".json", ".jsonl")
MAX_CONTROL_SHARE = 1 / 50
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # Unicode Cc minus \t \n \v \f \r
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


# An upload that cannot be used; the message names the file and what is wrong with it. One
# error type for every refused input file, uploads and benchmark data alike.
DocumentError = DataError


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


def _json_documents(title: str, text: str) -> list[Document]:
    value = load_json(text, title)
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
            documents.extend(_item_documents(load_json(line, where), where))
    return documents


def _item_documents(item: Any, where: str) -> list[Document]:
    """A shared-schema example -> one document per chunk; {"title", "text"} -> one document.
    `where` ("f.json item 2") names the item in errors and stands in for a missing title."""
    if isinstance(item, dict) and "chunks" in item:
        chunks = string_list(item, "chunks", where)
        example_id = item.get("id")
        name = clean_title(str(example_id)) if isinstance(example_id, str | int) else ""
        return [Document(f"{name or where} #{n}", chunk) for n, chunk in enumerate(chunks, 1)]
    if isinstance(item, dict) and isinstance(item.get("text"), str):
        given = item.get("title")
        shown = clean_title(given) if isinstance(given, str) else ""
        return [Document(shown or where, item["text"])]
    got = json_type(item)
    if isinstance(item, dict):  # keys come from the upload: shortened, repr() escapes them
        got += " with keys " + ", ".join(repr(key[:30]) for key in list(item)[:5])
    raise DocumentError(f'{where}: expected an object with "chunks" (the dataset schema) or '
                        f'"text" (and "title"), got {got}')
