"""A store directory: one chunk file each, written whole or not at all, read back checked.

Each file is written under a temporary name of its own, `.{name}.{pid}.{random}.tmp`, flushed
to disk and renamed over its target: a save killed half-way leaves every earlier file whole,
and two saves to one directory at once never write the same temporary file. Temporaries left
by a killed save are removed by the next save or load once their process is gone or they are
older than STALE_TMP_S.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.store.chunk import ChunkFormat, ChunkKV
from engine.store.codec import ChunkRefused, decode, encode, max_encoded_bytes

log = logging.getLogger(__name__)
STALE_TMP_S = 600.0  # no single chunk file takes minutes to write


def write_chunks(directory: Path, chunks: list[ChunkKV], fmt: ChunkFormat) -> None:
    """Make `directory` hold exactly these chunks, as `{key}.safetensors` files."""
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(directory)
    for chunk in chunks:
        write_atomic(directory, f"{chunk.key}.safetensors", encode(chunk, fmt))
    keep = {f"{c.key}.safetensors" for c in chunks}
    for stale in directory.glob("*.safetensors"):
        if stale.name not in keep:
            stale.unlink(missing_ok=True)  # a concurrent save may have removed it


def read_chunks(directory: Path, fmt: ChunkFormat, max_tokens: int,
                ) -> Iterator[tuple[str, ChunkKV | Exception]]:
    """(file name, its checked chunk or why it was refused) for each chunk file, in name
    order; a file is read only when its size could be a valid chunk."""
    remove_stale_tmp(directory)
    limit = max_encoded_bytes(fmt, max_tokens)
    for file in sorted(directory.glob("*.safetensors")):
        try:
            size = file.stat().st_size
            if size > limit:
                raise ChunkRefused(f"{size} bytes, more than a chunk of {max_tokens} tokens takes")
            yield file.name, decode(file.read_bytes(), fmt, max_tokens)
        except Exception as e:  # ChunkRefused, an unreadable file, anything a crafted one does
            yield file.name, e


def load_chunks(directory: Path, fmt: ChunkFormat, max_tokens: int,
                add: Callable[[ChunkKV], bool | None]) -> tuple[int, list[str]]:
    """Give each valid chunk file to `add` (True: added, None: held already, False: no room,
    which stops the load) -> (number added, warnings naming each file refused)."""
    loaded, warnings = 0, []
    for name, chunk in read_chunks(directory, fmt, max_tokens):
        if isinstance(chunk, Exception):  # a bad file never stops the others from loading
            warnings.append(f"skipped {name}: {chunk}")
            continue
        added = add(chunk)
        if added is False:
            warnings.append(f"stopped at {name}: it needs {chunk.num_bytes} bytes, more than the "
                            "store's free budget; the files after it were not loaded")
            break
        loaded += bool(added)
    for w in warnings:
        log.warning(w)
    return loaded, warnings


def write_atomic(directory: Path, name: str, data: bytes) -> None:
    """Write `data` to `directory/name`, whole or not at all."""
    tmp = directory / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:16]}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / name)
    finally:
        tmp.unlink(missing_ok=True)  # only still there when the write failed


def remove_stale_tmp(directory: Path, max_age_s: float = STALE_TMP_S) -> int:
    """Remove the temporaries a killed save left: those of a process no longer running here,
    and any older than `max_age_s` -> how many were removed."""
    removed, now = 0, time.time()
    for tmp in directory.glob(".*.tmp"):
        try:
            stale = now - tmp.stat().st_mtime > max_age_s or not _running(_pid_of(tmp.name))
            if stale:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:  # another save or load removed it first
            continue
    return removed


def _pid_of(name: str) -> int | None:
    """The writer's pid in `.{name}.{pid}.{random}.tmp`; None for other names."""
    parts = name.split(".")
    return int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None


def _running(pid: int | None) -> bool:
    """Whether process `pid` runs on this machine (True when unknown: leave it to the age)."""
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a pid no kernel hands out
        return False
    except PermissionError:  # another user's process
        return True
    return True
