"""Uploads bounded per client address before they reach the disk, and deleted when unused.

Gradio writes an upload (`POST …/gradio_api/upload`, multipart) into its upload folder as it
streams in, before any handler runs. `UploadGuard`, an ASGI middleware in front of every
multipart POST, holds each client address (app/clients.py) to `upload_calls` requests,
`upload_files` files and `upload_bytes` bytes per minute, counting also what is still on disk:

- requests and bytes are checked before a byte of the body is read: the request must say its
  length (411 otherwise), and one over what the address may still send is refused (429; 413
  when it is over the whole allowance alone);
- files are counted as the body streams: the part that would pass the allowance is never
  handed on (the body is closed just before it), and the request is refused with the files
  written before it deleted at once.

Every file an upload wrote is registered; `Uploads` deletes it `upload_keep_s` after the upload
unless a model call of its address is queued or running then (a compile waiting in the queue
keeps its files). compile_files deletes the files it reads.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.clients import client_address
from app.limits import AppLimits
from app.render import size_text

WINDOW_S = 60.0  # the allowance is per minute
SWEEP_S = 5.0  # how often unused uploads are looked for


@dataclass
class _Record:
    """One multipart request of an address."""

    time: float
    num_bytes: int
    num_files: int = 0
    paths: list[str] = field(default_factory=list)


class Uploads:
    """Per-address allowances and the uploaded files not yet deleted."""

    def __init__(self, limits: AppLimits, busy: Callable[[], set[str]] = set) -> None:
        self.limits, self.busy = limits, busy
        self._records: dict[str, list[_Record]] = {}
        self._files: dict[str, tuple[float, str]] = {}  # path -> (uploaded at, address)
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    def _live(self, client: str, now: float) -> list[_Record]:
        """The address's records that still count: of the last minute, or with files kept."""
        records = [r for r in self._records.get(client, [])
                   if now - r.time < WINDOW_S or any(p in self._files for p in r.paths)]
        if records:
            self._records[client] = records
        else:
            self._records.pop(client, None)
        return records

    def admit(self, client: str, num_bytes: int) -> tuple[_Record | None, str]:
        """A record for a request of `num_bytes` from `client`, or (None, why not)."""
        limits, now = self.limits, time.monotonic()
        if num_bytes > limits.upload_bytes:
            return None, (f"413 this upload is {size_text(num_bytes)}, over the "
                          f"{size_text(limits.upload_bytes)} one address may upload a minute")
        with self._lock:
            records = self._live(client, now)
            used = sum(r.num_bytes for r in records)
            files = sum(r.num_files for r in records)
            if (len(records) >= limits.upload_calls or files >= limits.upload_files
                    or used + num_bytes > limits.upload_bytes):
                wait = max(1, round(WINDOW_S - (now - records[0].time)))
                return None, (f"429 too many uploads from your address: at most "
                              f"{limits.upload_calls} requests, {limits.upload_files} files "
                              f"and {size_text(limits.upload_bytes)} a minute (uploads not "
                              f"compiled count until deleted); try again in {wait} s")
            record = _Record(now, num_bytes)
            self._records.setdefault(client, []).append(record)
            return record, ""

    def take_file(self, client: str, record: _Record) -> bool:
        """Count one more file of `record` -> False when that is past the allowance."""
        with self._lock:
            files = sum(r.num_files for r in self._live(client, time.monotonic()))
            if files >= self.limits.upload_files:
                return False
            record.num_files += 1
            return True

    def register(self, client: str, record: _Record, paths: list[str]) -> None:
        """Files an upload wrote: deleted `upload_keep_s` from now unless used."""
        now = time.monotonic()
        with self._lock:
            record.paths.extend(paths)
            for path in paths:
                self._files[path] = (now, client)
            if self._sweeper is None:
                self._sweeper = threading.Thread(target=_sweep_forever, args=(weakref.ref(self),),
                                                 name="epic-upload-sweeper", daemon=True)
                self._sweeper.start()

    def delete(self, paths: list[str]) -> None:
        with self._lock:
            for path in paths:
                self._files.pop(path, None)
        for path in paths:
            _remove(path)

    def sweep(self) -> list[str]:
        """Delete the uploads older than `upload_keep_s` whose address has no model call
        queued or running -> the paths deleted."""
        now, busy = time.monotonic(), self.busy()
        with self._lock:
            old = [path for path, (at, client) in self._files.items()
                   if now - at >= self.limits.upload_keep_s and client not in busy]
        self.delete(old)
        return old

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)


def _remove(path: str) -> None:
    """Delete an uploaded file and the folder Gradio made for it, if now empty."""
    file = Path(path)
    file.unlink(missing_ok=True)
    try:
        file.parent.rmdir()
    except OSError:
        pass  # not empty (the same content under another name), or gone


def _sweep_forever(uploads: weakref.ref) -> None:
    while True:
        time.sleep(SWEEP_S)
        live = uploads()
        if live is None:
            return
        live.sweep()
        del live


class PartCounter:
    """Counts the parts of a multipart body as it streams, and closes the body before the part
    that `allowed()` refuses."""

    def __init__(self, boundary: bytes) -> None:
        self.delimiter = b"--" + boundary
        self.held = b""  # a tail that may begin a delimiter: passed on with the next bytes

    def feed(self, data: bytes, final: bool, allowed: Callable[[], bool]) -> tuple[bytes, bool]:
        """-> (the bytes to pass on, whether the body was cut short and closed)."""
        data, self.held = self.held + data, b""
        size, start = len(self.delimiter), 0
        while (i := data.find(self.delimiter, start)) >= 0:
            if i + size + 2 > len(data) and not final:
                self.held = data[i:]  # cannot tell a part's start from the end yet
                return data[:i], False
            if data[i + size:i + size + 2] != b"--":  # a part begins (not the closing one)
                if not allowed():
                    return data[:i] + self.delimiter + b"--\r\n", True
            start = i + size
        if not final:
            cut = max(start, len(data) - size + 1)
            data, self.held = data[:cut], data[cut:]
        return data, False


class UploadGuard:
    """ASGI middleware: every multipart POST within its address's allowance (see the module
    docstring); other requests pass untouched."""

    def __init__(self, app: Any, uploads: Uploads) -> None:
        self.app, self.uploads = app, uploads

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])} if scope["type"] == "http" else {}
        kind, _, params = headers.get("content-type", "").partition(";")
        if scope.get("method") != "POST" or kind.strip().lower() != "multipart/form-data":
            return await self.app(scope, receive, send)
        peer = scope.get("client") or (None, None)
        client = client_address(peer[0], headers, self.uploads.limits.behind_proxy)
        length = headers.get("content-length", "")
        if not length.isdigit():
            return await _refuse(send, "411 an upload must say its length (Content-Length)")
        record, why = self.uploads.admit(client, int(length))
        if record is None:
            return await _refuse(send, why)
        boundary = _boundary(params)
        if boundary is None:
            return await _refuse(send, "400 a multipart body needs a boundary")
        counter, state = PartCounter(boundary), {"cut": False}

        async def guarded_receive() -> dict:
            message = await receive()
            if message["type"] != "http.request" or state["cut"]:
                return message
            final = not message.get("more_body", False)
            body, cut = counter.feed(message.get("body", b""), final,
                                     lambda: self.uploads.take_file(client, record))
            state["cut"] = cut
            return {"type": "http.request", "body": body, "more_body": not (final or cut)}

        sent: list[dict] = []

        async def held_send(message: dict) -> None:
            sent.append(message)  # a small JSON reply: held until it is complete

        await self.app(scope, guarded_receive, held_send)
        paths = _paths(sent) if scope["path"].endswith("/upload") else []
        if state["cut"]:
            self.uploads.delete(paths)
            return await _refuse(send, f"429 this upload has more files than your address may "
                                 f"still upload ({self.uploads.limits.upload_files} a minute): "
                                 "nothing of it was kept")
        self.uploads.register(client, record, paths)
        for message in sent:
            await send(message)


def _boundary(params: str) -> bytes | None:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value.strip('"'):
            return value.strip('"').encode("latin-1")
    return None


def _paths(messages: list[dict]) -> list[str]:
    """The files an upload reply lists (a JSON list of paths), [] for any other reply."""
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    if start is None or start.get("status") != 200:
        return []
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    try:
        paths = json.loads(body)
    except ValueError:
        return []
    return [p for p in paths if isinstance(p, str)] if isinstance(paths, list) else []


async def _refuse(send: Callable, text: str) -> None:
    """Answer "<status> <message>" as plain text."""
    status, _, message = text.partition(" ")
    body = message.encode()
    await send({"type": "http.response.start", "status": int(status),
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
