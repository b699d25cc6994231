"""Uploads -> documents: every accepted format, and the bad input that must be refused."""

from __future__ import annotations

import io
import json

import pytest
from pypdf import PdfWriter

from app.uploads import (
    MIB,
    Document,
    DocumentError,
    DocumentLimits,
    parse_file,
    parse_files,
    safe_name,
)

EXAMPLE = {"id": "ex1", "dataset": "hotpotqa", "task": "qa",
           "chunks": ["First passage.", "Second."], "question": "Which?", "answers": ["First"]}


def make_pdf(content: bytes) -> bytes:
    """A one-page PDF whose page draws `content` (a content stream) in Helvetica."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def refused(name: str, data: bytes, match: str, limits: DocumentLimits | None = None) -> str:
    with pytest.raises(DocumentError, match=match) as caught:
        parse_file(name, data, limits or DocumentLimits())
    return str(caught.value)


# --- accepted input ---------------------------------------------------------------------

def test_text_and_markdown_give_one_document_each():
    assert parse_file("notes.txt", b"Hello world.\n") == [Document("notes.txt", "Hello world.\n")]
    assert parse_file("README.MD", b"# Title\n\nBody") == [
        Document("README.MD", "# Title\n\nBody")]


@pytest.mark.parametrize(("data", "text"), [
    ("café déjà vu".encode("latin-1"), "café déjà vu"),  # not UTF-8: Latin-1 bytes
    (b"\x93quoted\x94 \x96 dash", "“quoted” – dash"),  # Windows-1252 quotes and dash
    ("héllo wörld".encode("utf-16"), "héllo wörld"),  # UTF-16 with its BOM (native order)
    (b"\xfe\xff" + "big endian".encode("utf-16-be"), "big endian"),
    (b"\xef\xbb\xbfbom dropped", "bom dropped"),
])
def test_text_encodings(data, text):
    assert parse_file("doc.txt", data)[0].text == text


def test_pdf_text_is_extracted():
    docs = parse_file("paper.pdf", make_pdf(b"BT /F1 12 Tf 20 100 Td (Hello from a PDF) Tj ET"))
    assert len(docs) == 1 and docs[0].title == "paper.pdf"
    assert "Hello from a PDF" in docs[0].text, docs[0].text


def test_json_shared_schema_object_gives_one_document_per_chunk():
    docs = parse_file("one.json", json.dumps(EXAMPLE).encode())
    assert docs == [Document("ex1 #1", "First passage."), Document("ex1 #2", "Second.")]


def test_json_list_of_title_text_and_schema_objects():
    value = [{"title": "Intro", "text": "Intro text."}, {"text": "No title."},
             {"chunks": ["  ", "Only real chunk."]}]
    docs = parse_file("mixed.json", json.dumps(value).encode())
    assert docs == [Document("Intro", "Intro text."), Document("mixed.json item 2", "No title."),
                    Document("mixed.json item 3 #2", "Only real chunk.")], "blank chunk skipped"


def test_jsonl_one_example_a_line():
    lines = [json.dumps(EXAMPLE), "", json.dumps({**EXAMPLE, "id": 7, "chunks": ["Third."]})]
    docs = parse_file("set.jsonl", "\n".join(lines).encode())
    assert [d.title for d in docs] == ["ex1 #1", "ex1 #2", "7 #1"]


def test_unicode_line_separator_inside_a_jsonl_string_is_not_a_line_break():
    line = json.dumps({"title": "t", "text": "a\u2028b"}, ensure_ascii=False)
    assert parse_file("sep.jsonl", line.encode())[0].text == "a\u2028b"


# --- file names ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "title"), [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("C:\\Users\\me\\notes.md", "notes.md"),
    ("evil\u202etxt.exe.txt", "eviltxt.exe.txt"),  # bidi override removed
    ("line\nbreak\x00.txt", "linebreak.txt"),
    ("/", "unnamed"),
])
def test_names_are_reduced_to_a_clean_base_name(name, title):
    assert safe_name(name) == title
    if title.endswith(".txt"):
        assert parse_file(name, b"content")[0].title == title


def test_long_names_are_shortened_keeping_the_extension():
    title = safe_name("x" * 500 + ".txt")
    assert len(title) == 120 and title.endswith("….txt"), title


# --- refused input ------------------------------------------------------------------------

def test_empty_and_blank_files():
    refused("empty.txt", b"", r"empty\.txt: the file is empty")
    refused("blank.md", b" \n\t\n", r"blank\.md: the file is empty")
    refused("empty.json", b"[]", r"empty\.json: the file is empty")


@pytest.mark.parametrize("data", [
    b"PK\x03\x04\x00\x00binary zip header",  # NUL bytes
    "utf-16 without a BOM".encode("utf-16-le"),  # NULs too: refused, not guessed
    bytes(range(1, 9)) * 40 + b"a little text",  # control characters, no NUL
])
def test_binary_content_is_refused_whatever_the_name(data):
    message = refused("image.txt", data, "looks binary")
    assert message.startswith("image.txt: "), message


def test_oversized_file_names_the_limit():
    message = refused("big.txt", b"a" * (5 * MIB + 1), "over the limit")
    assert message == "big.txt: 5.0 MiB is over the limit of 5.0 MiB per file", message
    refused("small.txt", b"a" * 11, r"11 bytes is over the limit of 10 bytes",
            DocumentLimits(max_file_bytes=10))


def test_too_much_text_per_file():
    refused("long.txt", b"a" * 101, r"101 characters of text is over the limit of 100 per file",
            DocumentLimits(max_chars=100))


@pytest.mark.parametrize("name", ["tool.exe", "archive.tar.gz", "no_extension", "noext."])
def test_unknown_extensions_list_the_accepted_ones(name):
    refused(name, b"data", r"unsupported file type .*accepted: \.txt, \.md, \.pdf, \.json, \.jsonl")


@pytest.mark.parametrize("data", [b"%PDF-1.4\ngarbage", b"plain text, not a PDF", b"\x00" * 64])
def test_malformed_pdf(data):
    refused("broken.pdf", data, r"broken\.pdf: not a readable PDF")


def test_pdf_without_text_and_protected_pdf():
    refused("scan.pdf", make_pdf(b"0 0 m 10 10 l S"), "no extractable text")
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    refused("locked.pdf", buffer.getvalue(), "password-protected")


def test_malformed_json_names_the_line():
    refused("bad.json", b'{"title": "x",\n "text": }', r"bad\.json: not valid JSON .*line 2")
    refused("deep.json", b"[" * 100_000, "nested too deeply")


def test_broken_jsonl_line_is_named():
    lines = [json.dumps(EXAMPLE), json.dumps(EXAMPLE), '{"chunks": ["a"', json.dumps(EXAMPLE)]
    refused("set.jsonl", "\n".join(lines).encode(), r"set\.jsonl line 3: not valid JSON")


@pytest.mark.parametrize(("value", "match"), [
    ({"passages": ["a"]}, r"expected an object with \"chunks\".*keys 'passages'"),
    ({"chunks": "not a list"}, r"\"chunks\" must be a non-empty list of strings"),
    ({"chunks": []}, r"\"chunks\" must be a non-empty list of strings"),
    ({"chunks": ["ok", 3]}, r"\"chunks\" must be a non-empty list of strings"),
    (42, "got a number"),
    ([{"text": "fine"}, "just a string"], r"item 2: expected .* got a string"),
])
def test_wrong_json_shape(value, match):
    refused("data.json", json.dumps(value).encode(), match)


def test_parse_files_limits_and_names_the_bad_file():
    files = [("a.txt", b"first"), ("dir/b.md", b"second")]
    assert [d.title for d in parse_files(files)] == ["a.txt", "b.md"]
    with pytest.raises(DocumentError, match="21 files given; at most 20"):
        parse_files([("f.txt", b"x")] * 21)
    with pytest.raises(DocumentError, match=r"^bad\.txt: the file is empty"):
        parse_files([("a.txt", b"fine"), ("../bad.txt", b""), ("c.txt", b"never read")])
    with pytest.raises(DocumentError, match=r"b\.txt: 12 characters .* per upload"):
        parse_files([("a.txt", b"x" * 6), ("b.txt", b"y" * 6)], DocumentLimits(max_chars=10))
