"""The bundle's weights in parts: split to fit, stored by an early call, joined and checked by
the last one; every missing or corrupt part named, with what to do."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gpu_check.bundle import report
from gpu_check.parts import (
    MANIFEST,
    MIB,
    TRANSFER_LIMIT_BYTES,
    Bundle,
    BundleError,
    file_entry,
    sha256_of,
    split,
)


def _bundle(root: Path, size: int = 300_001, part_limit: int = 200_000) -> Path:
    """A bundle of two transfers around a random 'weights' file, as gpu_check.bundle lays it
    out (parts, one data file in the last transfer, the same manifest in each)."""
    root.mkdir(exist_ok=True)
    source = root / "model.gguf"
    source.write_bytes(os.urandom(size))
    bundle = root / "bundle"
    folders = [bundle / "transfer-1", bundle / "transfer-2"]
    parts = split(source, folders, part_limit)
    data = folders[1] / "data" / "x.jsonl"
    data.parent.mkdir()
    data.write_text('{"chunks": ["a"], "question": "q", "answers": ["a"]}\n')
    manifest = {"created_utc": "t0", "weights": {**file_entry(source, source.name, 0),
                                                 "parts": parts},
                "files": [file_entry(data, "data/x.jsonl", 2)],
                "transfers": [{"index": 1}, {"index": 2}]}
    for folder in folders:
        (folder / MANIFEST).write_text(json.dumps(manifest))
    return bundle


def test_split_fits_the_limit_and_joins_to_the_same_bytes(tmp_path):
    bundle = _bundle(tmp_path)
    sizes = [p.stat().st_size for p in sorted(bundle.glob("transfer-*/weights.part-*"))]
    assert len(sizes) == 2 and max(sizes) <= 200_000 and sum(sizes) == 300_001
    joined = Bundle(bundle, tmp_path / "stash").weights()
    assert sha256_of(joined) == sha256_of(tmp_path / "model.gguf"), "joined != source"


def test_split_refuses_parts_over_the_limit(tmp_path):
    source = tmp_path / "big"
    source.write_bytes(b"x" * 1000)
    with pytest.raises(BundleError, match="over the 0 MiB limit"):
        split(source, [tmp_path / "a", tmp_path / "b"], part_limit=400)


def test_two_calls_on_one_machine_join_through_the_stash(tmp_path):
    bundle, stash = _bundle(tmp_path), tmp_path / "stash"
    first, last = tmp_path / "call-1", tmp_path / "call-2"  # each call's own repository copy
    first.mkdir()
    last.mkdir()
    (bundle / "transfer-1").rename(first / "transfer-1")
    (bundle / "transfer-2").rename(last / "transfer-2")
    lines = Bundle(first, stash).store()
    assert len(lines) == 1 and "part 1 of 2" in lines[0] and "SHA-256 ok" in lines[0]
    # a damaged copy of transfer 1 left in the last call's folder: the stash's good copy wins
    (last / "transfer-1").mkdir()
    (last / "transfer-1" / MANIFEST).write_text((first / "transfer-1" / MANIFEST).read_text())
    (last / "transfer-1" / "weights.part-1-of-2").write_bytes(b"damaged")
    joined = Bundle(last, stash).weights()
    assert sha256_of(joined) == sha256_of(tmp_path / "model.gguf")
    assert Bundle(last, stash).checked("data/x.jsonl").is_file()


def test_a_missing_part_is_named_with_its_transfer(tmp_path):
    bundle = _bundle(tmp_path)
    (bundle / "transfer-1" / "weights.part-1-of-2").unlink()
    with pytest.raises(BundleError) as e:
        Bundle(bundle, tmp_path / "stash").weights()
    message = str(e.value)
    assert "weights part 1 of 2 is missing" in message, message
    assert "transfer 1" in message and "warm" in message, "say how to bring it"
    assert not (tmp_path / "stash" / "model.gguf").exists(), "nothing joined"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_corrupt_part_is_refused(tmp_path, damage):
    bundle = _bundle(tmp_path)
    part = bundle / "transfer-2" / "weights.part-2-of-2"
    data = bytearray(part.read_bytes())
    if damage == "flip":
        data[100] ^= 0xFF
    else:
        data = data[:-1]
    part.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="weights part 2 of 2 is corrupt"):
        Bundle(bundle, tmp_path / "stash").weights()
    with pytest.raises(BundleError, match="corrupt"):  # nor stored by a call that brings it
        Bundle(bundle, tmp_path / "stash").store()


def test_a_corrupt_bundle_file_is_refused(tmp_path):
    bundle = _bundle(tmp_path)
    (bundle / "transfer-2" / "data" / "x.jsonl").write_text("changed\n")
    with pytest.raises(BundleError, match=r"data/x\.jsonl is corrupt"):
        Bundle(bundle, tmp_path / "stash").checked("data/x.jsonl")


def test_the_newest_bundle_wins_over_leftovers(tmp_path):
    old = _bundle(tmp_path / "old")
    stash = tmp_path / "stash"
    assert Bundle(old, stash).store(), "an old bundle's part 1 in the stash"
    new = _bundle(tmp_path / "new")
    for path in new.glob("transfer-*/" + MANIFEST):
        path.write_text(json.dumps({**json.loads(path.read_text()), "created_utc": "t1"}))
    (new / "transfer-1").rename(tmp_path / "new-1")
    (old / "transfer-1").rename(new / "transfer-1")  # an ignored folder left by a call
    bundle = Bundle(new, stash)
    assert any("passed over" in n and "transfer-1" in n for n in bundle.notes), bundle.notes
    assert any("emptied" in n for n in bundle.notes), bundle.notes
    assert bundle.present == [2] and not (stash / "parts").exists()
    with pytest.raises(BundleError, match="weights part 1 of 2 is missing"):
        bundle.weights()  # the old part is neither taken nor called corrupt
    (new / "transfer-1").rename(tmp_path / "old-1")
    (tmp_path / "new-1").rename(new / "transfer-1")
    assert sha256_of(Bundle(new, stash).weights()) == sha256_of(tmp_path / "new" / "model.gguf")


def test_no_bundle_says_how_to_make_one(tmp_path):
    with pytest.raises(BundleError, match=r"scripts/gpu_bundle\.sh"):
        Bundle(tmp_path / "nothing", tmp_path / "stash")


def test_report_refuses_a_transfer_over_the_limit():
    transfers = [{"index": 1, "carry": ".gpu_bundle/transfer-1", "bundle_bytes": 50 * MIB,
                  "tree_bytes": 3 * MIB, "num_bytes": 53 * MIB},
                 {"index": 2, "carry": ".gpu_bundle/transfer-2", "bundle_bytes": 58 * MIB,
                  "tree_bytes": 3 * MIB, "num_bytes": 61 * MIB}]
    manifest = {"transfers": transfers, "weights": {"parts": [
        {"file": "weights.part-1-of-2", "transfer": 1},
        {"file": "weights.part-2-of-2", "transfer": 2}]}}
    lines, fits = report(manifest)
    assert not fits and 61 * MIB > TRANSFER_LIMIT_BYTES
    assert "53.0 MiB" in lines[0] and "OVER" not in lines[0]
    assert "61.0 MiB" in lines[1] and "OVER the 60 MiB limit" in lines[1]
