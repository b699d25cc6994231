"""The one byte format of a compiled chunk, for files on disk and values in a shared store.

A chunk is safetensors bytes: tensors `k`, `v` (the layout of `ChunkKV`) and `token_ids`
(int64 [T]), with string metadata: format tag, key, title, model id, dtype, compile variant
(absent for the default), a sha256 of the tensors and, for a salted chunk, its salt (part of
its key). Nothing is ever unpickled. Whatever comes back from disk or from another replica is
checked like a fresh compile before the engine sees it: the checksum catches corruption, and
since anyone can write a consistent checksum, every field is checked on its own too — model,
dtype, shapes, finite values, token ids in the vocabulary, token count, title within limits,
and the key against the ids, the variant and the salt.
"""

from __future__ import annotations

import hashlib
import json
import re

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from engine.store.chunk import ChunkFormat, ChunkKV
from engine.store.titles import MAX_TITLE_CHARS, clean_title

FORMAT = "epic-lab-chunk-v1"
MAX_HEADER_BYTES = 1024**2  # the JSON header: three tensor entries and a short title fit in 2 KB
# K/V a model computes stay far inside float16's range (its largest finite value); 1e30 in a
# float32 file is as wrong as NaN, and would overflow the attention scores just the same.
MAX_ABS_KV = 65504.0
_SAFETENSORS_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}
_NAMES = ("k", "token_ids", "v")
MAX_SALT_CHARS = 128
VARIANT = re.compile(r"[a-z0-9_:]{0,64}")  # a compile variant's name ("" the default)


class ChunkRefused(ValueError):
    """Bytes that are not a valid chunk for this store; the message says why."""


def max_encoded_bytes(fmt: ChunkFormat, max_tokens: int) -> int:
    """The most bytes a valid chunk of at most `max_tokens` tokens can take."""
    return 8 + MAX_HEADER_BYTES + max_tokens * (fmt.bytes_per_token + 8)


def encode(chunk: ChunkKV, fmt: ChunkFormat) -> bytes:
    """The chunk as safetensors bytes with its metadata and checksum."""
    tensors = {"k": chunk.k.detach().contiguous().cpu(), "v": chunk.v.detach().contiguous().cpu(),
               "token_ids": torch.tensor(chunk.token_ids, dtype=torch.int64)}
    meta = {"format": FORMAT, "key": chunk.key, "title": chunk.title,
            "model_id": fmt.model_id, "dtype": fmt.dtype_name, "sha256": checksum(tensors)}
    if chunk.salt:  # only salted chunks carry one: files of unsalted chunks stay as they were
        meta["salt"] = chunk.salt
    if chunk.variant:
        meta["variant"] = chunk.variant
    return save_tensors(tensors, metadata=meta)


def decode(data: bytes, fmt: ChunkFormat, max_tokens: int, key: str | None = None) -> ChunkKV:
    """The chunk in `data`, checked against this store's format and limits (and, when given,
    the key it was asked for), on `fmt.device`; ChunkRefused says what is wrong."""
    if len(data) > max_encoded_bytes(fmt, max_tokens):
        raise ChunkRefused(f"{len(data)} bytes, more than a chunk of {max_tokens} tokens takes")
    header = _header(data)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ChunkRefused("not an EPIC Lab chunk")
    if (meta.get("model_id"), meta.get("dtype")) != (fmt.model_id, fmt.dtype_name):
        raise ChunkRefused(f"compiled for another model ({meta.get('model_id')}, "
                           f"{meta.get('dtype')}); this engine runs {fmt.model_id}, "
                           f"{fmt.dtype_name}")
    if key is not None and meta.get("key") != key:
        raise ChunkRefused(f"holds chunk {str(meta.get('key'))[:40]!r}, not {key!r}")
    title = _checked_title(meta.get("title", ""))
    variant = meta.get("variant", "")
    if not isinstance(variant, str) or not VARIANT.fullmatch(variant):
        raise ChunkRefused(f"compile variant {str(variant)[:40]!r} is not a variant name")
    _check_entries(header, fmt, max_tokens)
    try:
        tensors = load_tensors(data)
    except Exception as e:  # the header passed; the data section does not match it
        raise ChunkRefused(f"unreadable tensors ({e})") from None
    if meta.get("sha256") != checksum(tensors):
        raise ChunkRefused("checksum mismatch (corrupted data)")
    token_ids = tensors["token_ids"]
    if fmt.vocab_size and not (0 <= int(token_ids.min()) and int(token_ids.max()) < fmt.vocab_size):
        raise ChunkRefused(f"token ids outside the vocabulary [0, {fmt.vocab_size}) "
                           f"(min {int(token_ids.min())}, max {int(token_ids.max())})")
    ids = tuple(token_ids.tolist())
    salt = meta.get("salt", "")
    if not isinstance(salt, str) or len(salt) > MAX_SALT_CHARS:
        raise ChunkRefused(f"salt is not text of at most {MAX_SALT_CHARS} characters")
    if fmt.key_for(ids, variant, salt) != meta.get("key"):
        raise ChunkRefused("key does not match its token ids and compile variant")
    for name in ("k", "v"):
        low, high = (float(x) for x in torch.aminmax(tensors[name]))
        if not -MAX_ABS_KV <= low <= high <= MAX_ABS_KV:  # NaN fails these comparisons too
            raise ChunkRefused(f"{name.upper()} holds non-finite or out-of-range values (min "
                               f"{low:g}, max {high:g}, limit ±{MAX_ABS_KV:g})")
    return ChunkKV(meta["key"], title, ids, tensors["k"].to(fmt.device),
                   tensors["v"].to(fmt.device), variant=variant, salt=salt)


def _header(data: bytes) -> dict:
    """The safetensors JSON header, read without touching the tensor data."""
    if len(data) < 8:
        raise ChunkRefused(f"{len(data)} bytes: too short for a safetensors header")
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER_BYTES:
        raise ChunkRefused(f"header of {size} bytes, over the limit of {MAX_HEADER_BYTES}")
    if 8 + size > len(data):
        raise ChunkRefused("truncated header")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError:
        raise ChunkRefused("header is not JSON (not a safetensors file)") from None
    if not isinstance(header, dict):
        raise ChunkRefused("header is not a JSON object")
    return header


def _checked_title(title: object) -> str:
    if not isinstance(title, str):
        raise ChunkRefused("title is not text")
    if len(title) > MAX_TITLE_CHARS:
        raise ChunkRefused(f"title has {len(title)} characters, over the limit of "
                           f"{MAX_TITLE_CHARS}")
    if clean_title(title) != title:  # every writer stores clean titles: this one was crafted
        raise ChunkRefused("title holds control, bidi or zero-width characters or line breaks")
    return title


def _check_entries(header: dict, fmt: ChunkFormat, max_tokens: int) -> None:
    """Tensor names, dtypes and shapes, checked on the header before any data is read."""
    names = tuple(sorted(n for n in header if n != "__metadata__"))
    if names != _NAMES or not all(isinstance(header[n], dict) for n in names):
        raise ChunkRefused(f"tensors {list(names)[:8]}, expected {list(_NAMES)}")
    ids, shape = header["token_ids"], header["token_ids"].get("shape")
    if ids.get("dtype") != "I64" or not isinstance(shape, list) or len(shape) != 1:
        raise ChunkRefused(f"token_ids are {ids.get('dtype')} {shape}, expected I64 [T]")
    num_tokens = shape[0]
    if not isinstance(num_tokens, int) or num_tokens < 1:
        raise ChunkRefused("zero tokens: a chunk holds at least one token")
    if num_tokens > max_tokens:
        raise ChunkRefused(f"{num_tokens} tokens, over the limit of {max_tokens}")
    want_dtype, want_shape = _SAFETENSORS_DTYPES[fmt.dtype], list(fmt.shape(num_tokens))
    for name in ("k", "v"):
        entry = header[name]
        if entry.get("dtype") != want_dtype:
            raise ChunkRefused(f"{name.upper()} is {entry.get('dtype')}; this engine stores "
                               f"{want_dtype} ({fmt.dtype_name})")
        if entry.get("shape") != want_shape:
            raise ChunkRefused(f"{name.upper()} shape {entry.get('shape')} does not match "
                               f"{want_shape}")


def checksum(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
