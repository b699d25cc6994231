"""Uploads bounded per client address before they reach the disk, and unused ones deleted
within a minute (issue 19: 3 requests x 20 files x 5 MiB = 315 MB were written in 5 s, and
swept after ~26 min). Raw multipart POSTs to the app launched on loopback (app/upload_guard.py)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio.processing_utils import hash_seed
from gradio.utils import get_upload_folder
from python_multipart.multipart import MultipartParser

from app.controls import UploadedFiles
from app.lab import Lab
from app.limits import AppLimits
from app.upload_guard import PartCounter, Uploads
from tests.app.conftest import serve

UPLOAD = "gradio_api/upload"


@pytest.fixture()
def served(engine):
    """(lab, url) of an app whose addresses may upload 3 requests, 4 files and 64 KiB a
    minute, unused uploads kept 1 s."""
    lab = Lab.open(engine, AppLimits(upload_calls=3, upload_files=4, upload_bytes=64 * 1024,
                                     upload_keep_s=1))
    demo, url = serve(lab)
    try:
        yield lab, url
    finally:
        demo.close()


def files(tag: str, count: int, size: int = 100) -> list[tuple[str, tuple[str, bytes]]]:
    """`count` distinct small text files for one multipart body."""
    return [("files", (f"{tag}-{n}.txt", (f"{tag} {n} ".encode() * size)[:size]))
            for n in range(count)]


def on_disk(body: list[tuple[str, tuple[str, bytes]]]) -> list[bool]:
    """Whether each file of a body is in Gradio's upload folder (named by its content)."""
    root = Path(get_upload_folder())
    return [(root / hashlib.sha256(hash_seed + data).hexdigest() / name).exists()
            for _, (name, data) in body]


def post(url: str, body, headers: dict | None = None) -> httpx.Response:
    return httpx.post(url + UPLOAD, files=body, headers=headers, timeout=30)


def test_files_within_the_allowance_are_uploaded_and_unused_ones_deleted(served):
    lab, url = served
    body = files("ok", 2)
    reply = post(url, body)
    assert reply.status_code == 200, reply.text
    assert all(on_disk(body)) and len(reply.json()) == 2
    deadline = time.monotonic() + 20  # kept 1 s, looked for every 5 s
    while any(on_disk(body)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(on_disk(body)), "an upload no compile used is still on disk"
    assert len(lab.uploads) == 0


def test_files_past_the_allowance_never_reach_the_disk(served):
    _, url = served
    body = files("many", 7)
    reply = post(url, body)
    assert reply.status_code == 429 and "more files than your address may" in reply.text
    assert not any(on_disk(body)), "a refused upload left files"
    late = files("late", 1)  # the 4 files before the cut were written (and deleted): counted
    assert post(url, late).status_code == 429 and not any(on_disk(late))


def test_a_request_cut_short_keeps_nothing_and_the_rest_is_still_refused(served):
    _, url = served
    first = files("first", 3)
    assert post(url, first).status_code == 200 and all(on_disk(first))
    second = files("second", 3)
    reply = post(url, second)
    assert reply.status_code == 429 and "nothing of it was kept" in reply.text
    assert not any(on_disk(second))


def test_bytes_and_requests_are_bounded_before_the_body_is_read(served):
    _, url = served
    big = files("big", 1, size=65 * 1024)
    reply = post(url, big)
    assert reply.status_code == 413 and "over the 64.0 KiB one address may upload" in reply.text
    assert not any(on_disk(big))
    for n in range(3):
        assert post(url, files(f"small{n}", 1)).status_code == 200
    late = files("late", 1)
    reply = post(url, late)
    assert reply.status_code == 429 and "at most 3 requests, 4 files" in reply.text
    assert not any(on_disk(late))


def test_an_upload_must_say_its_length(served):
    _, url = served

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.txt\"\r\n\r\n"
        yield b"x" * 100 + b"\r\n--b--\r\n"

    reply = httpx.post(url + UPLOAD, content=chunks(), timeout=30,
                       headers={"content-type": "multipart/form-data; boundary=b"})
    assert reply.status_code == 411 and "Content-Length" in reply.text


def test_each_address_has_its_own_allowance(served):
    lab, url = served
    lab.uploads.limits = replace(lab.uploads.limits, behind_proxy=True)  # as behind a proxy
    for address in ("203.0.113.1", "203.0.113.2"):
        body = files(address, 4)
        reply = post(url, body, headers={"x-forwarded-for": f"6.6.6.6, {address}"})
        assert reply.status_code == 200, reply.text
    reply = post(url, files("again", 1), headers={"x-forwarded-for": "203.0.113.1"})
    assert reply.status_code == 429


def test_an_address_with_a_call_queued_keeps_its_uploads():
    busy: set[str] = {"10.0.0.1"}
    uploads = Uploads(AppLimits(upload_keep_s=1), lambda: busy)
    record, _ = uploads.admit("10.0.0.1", 10)
    uploads.register("10.0.0.1", record, ["/nonexistent/kept.txt"])
    uploads._files["/nonexistent/kept.txt"] = (time.monotonic() - 5, "10.0.0.1")
    assert uploads.sweep() == [] and len(uploads) == 1, "a queued compile's files were deleted"
    busy.clear()
    assert uploads.sweep() == ["/nonexistent/kept.txt"]


def cut_body(body: bytes, boundary: bytes, size: int, limit: int) -> tuple[bytes, bool]:
    """`body` fed to a PartCounter `size` bytes at a time, `limit` parts allowed."""
    counter, taken, out = PartCounter(boundary), [0], b""

    def allowed() -> bool:
        taken[0] += 1
        return taken[0] <= limit

    for start in range(0, len(body), size):
        data, cut = counter.feed(body[start:start + size], start + size >= len(body), allowed)
        out += data
        if cut:
            return out, True
    return out, False


def part_names(body: bytes, boundary: bytes) -> list[bytes]:
    names: list[bytes] = []
    parser = MultipartParser(boundary, {"on_header_value": lambda d, s, e: names.append(d[s:e])})
    parser.write(body)
    parser.finalize()
    return names


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_the_part_counter_cuts_before_the_part_past_the_limit_at_any_split(limit):
    boundary = b"XyZb0undary"
    parts = [b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"files\"; "
             b"filename=\"f%d.txt\"\r\n\r\n" % n + b"-" * 40 + b"\r\n" for n in range(4)]
    body = b"".join(parts) + b"--" + boundary + b"--\r\n"
    for size in (1, 3, 7, 16, len(body)):
        out, cut = cut_body(body, boundary, size, limit)
        assert len(part_names(out, boundary)) == min(limit, 4), size
        assert cut == (limit < 4) and (out == body) == (limit >= 4), size


def test_a_url_is_never_fetched_into_the_cache():
    box = UploadedFiles()
    fetch = box.async_move_resource_to_block_cache("https://example.com/big.txt")
    with ThreadPoolExecutor(1) as pool, pytest.raises(gr.Error, match="a URL is not fetched"):
        pool.submit(asyncio.run, fetch).result()  # its own loop (a browser test may hold one)
