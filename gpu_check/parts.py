"""The bundle's manifest, and its weights in parts: split here, checked and joined there.

Standard library only: this runs on the GPU machine before anything is installed.

The bundle (`.gpu_bundle/`, built by gpu_check/bundle.py) is one folder per transfer,
`transfer-1/`, `transfer-2/`, ..., each carried by one `run` call and each holding the same
MANIFEST.json. The weights file is cut into parts, one per transfer; the last transfer also
holds the wheels, the tokenizer files and the data. A call that brings an early transfer
*stores* its parts in a stash folder outside the repository copy (kept while the machine stays
warm); the last call finds every part in its own copy or in the stash, checks each one's size
and SHA-256, joins them and checks the whole file again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "MANIFEST.json"
MIB = 1 << 20
TRANSFER_LIMIT_BYTES = 60 * MIB  # one `run` call's working tree, the repository's files included
PART_LIMIT_BYTES = 55 * MIB  # one part of the weights
BUNDLE_DIR = ".gpu_bundle"


class BundleError(RuntimeError):
    """The bundle cannot be used; the message says what is wrong and what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path, name: str, transfer: int) -> dict[str, Any]:
    """A manifest entry: the file's name inside its transfer folder, size and SHA-256."""
    return {"file": name, "transfer": transfer, "num_bytes": path.stat().st_size,
            "sha256": sha256_of(path)}


def split(source: Path, folders: list[Path], part_limit: int = PART_LIMIT_BYTES,
          ) -> list[dict[str, Any]]:
    """Cut `source` into len(folders) parts of nearly equal size, part i into folders[i]
    -> their manifest entries. Refuses when a part would exceed `part_limit`."""
    size, count = source.stat().st_size, len(folders)
    part_bytes = -(-size // count)
    if part_bytes > part_limit:
        raise BundleError(f"{source.name} ({size / MIB:.1f} MiB) in {count} parts makes parts "
                          f"of {part_bytes / MIB:.1f} MiB, over the {part_limit / MIB:.0f} MiB "
                          "limit: use more transfers")
    entries = []
    with source.open("rb") as f:
        for i, folder in enumerate(folders):
            name = f"weights.part-{i + 1}-of-{count}"
            folder.mkdir(parents=True, exist_ok=True)
            with (folder / name).open("wb") as out:
                out.write(f.read(part_bytes))
            entries.append(file_entry(folder / name, name, i + 1))
    return entries


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise BundleError(f"{folder / MANIFEST} cannot be read: {e}") from e


def transfer_folders(bundle: Path) -> list[Path]:
    """The transfer folders present in a bundle folder, in order."""
    return sorted((p for p in bundle.glob("transfer-*") if (p / MANIFEST).is_file()),
                  key=lambda p: p.name)


@dataclass(frozen=True)
class Found:
    """Where a bundle file was found and what is wrong with it ("" when nothing)."""

    entry: dict[str, Any]
    path: Path | None
    problem: str


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two manifests of one bundle."""
    return (a["weights"]["sha256"], a.get("created_utc")) == (b["weights"]["sha256"],
                                                              b.get("created_utc"))


def check(entry: dict[str, Any], candidates: list[Path]) -> Found:
    """The first candidate path whose file has the entry's size and SHA-256; else the first
    one's problem ("missing" when none exists)."""
    problems = []
    for path in (p for p in candidates if p.is_file()):
        size = path.stat().st_size
        if size != entry["num_bytes"]:
            problems.append(Found(entry, path, f"corrupt: {path} has {size} bytes, expected "
                                               f"{entry['num_bytes']}"))
            continue
        digest = sha256_of(path)
        if digest != entry["sha256"]:
            problems.append(Found(entry, path, f"corrupt: {path} has SHA-256 {digest[:16]}..., "
                                               f"expected {entry['sha256'][:16]}..."))
            continue
        return Found(entry, path, "")
    return problems[0] if problems else Found(entry, None, "missing")


class Bundle:
    """The bundle as one `run` call sees it: the transfer folders in its repository copy and
    the stash that earlier calls on the same machine filled."""

    def __init__(self, bundle: Path, stash: Path) -> None:
        """The newest bundle among the transfer folders and the stash wins: a folder left from
        an older bundle (ignored paths may outlive a call) is passed over, an older stash is
        emptied; `notes` says so."""
        self.bundle, self.stash, self.notes = bundle, stash, []
        found = [(p, read_manifest(p)) for p in transfer_folders(bundle)]
        stashed = read_manifest(stash) if (stash / MANIFEST).is_file() else None
        every = [m for _, m in found] + ([stashed] if stashed else [])
        if not every:
            raise BundleError(f"no bundle here: {bundle}/transfer-*/{MANIFEST} is missing. "
                              "Build it with `bash scripts/gpu_bundle.sh` and name its "
                              "transfer folder in the call's carry")
        self.manifest = max(every, key=lambda m: m.get("created_utc", ""))
        current = [p for p, m in found if _same(m, self.manifest)]
        for folder, other in found:
            if folder not in current:
                self.notes.append(f"passed over {folder}: it comes from an older bundle (built "
                                  f"{other.get('created_utc')})")
        if stashed and not _same(stashed, self.manifest):
            shutil.rmtree(stash / "parts", ignore_errors=True)
            (stash / MANIFEST).unlink()
            self.notes.append(f"emptied {stash}: its parts came from an older bundle")
        self.present = [int(p.name.rsplit("-", 1)[1]) for p in current]

    @property
    def num_transfers(self) -> int:
        return len(self.manifest["transfers"])

    def _candidates(self, entry: dict[str, Any]) -> list[Path]:
        """Where a part may lie: its own transfer folder in this call's copy (when that folder
        is of this bundle), else the stash."""
        own = ([self.bundle / f"transfer-{entry['transfer']}" / entry["file"]]
               if entry["transfer"] in self.present else [])
        return [*own, self.stash / "parts" / entry["file"]]

    def checked(self, name: str) -> Path:
        """A file or folder of the bundle other than the weights ("tokenizer", "wheels",
        "data/hotpotqa-10.jsonl"), every file in it checked by size and SHA-256."""
        entries = [e for e in self.manifest["files"]
                   if e["file"] == name or e["file"].startswith(name + "/")]
        if not entries:
            raise BundleError(f"the bundle's manifest lists no {name}")
        for entry in entries:
            found = check(entry, self._candidates(entry)[:-1])  # never in the stash
            if found.problem:
                raise BundleError(f"bundle file {entry['file']} is {found.problem}: it "
                                  f"travels in transfer {entry['transfer']} ({BUNDLE_DIR}/"
                                  f"transfer-{entry['transfer']} in the call's carry)")
        return self.bundle / f"transfer-{entries[0]['transfer']}" / name

    def store(self) -> list[str]:
        """Check the weights parts that came with this call and copy them into the stash, so a
        later call on the same machine finds them -> the notes, then one line per part."""
        lines = list(self.notes)
        self.stash.mkdir(parents=True, exist_ok=True)
        (self.stash / MANIFEST).write_text(json.dumps(self.manifest, indent=1) + "\n")
        for entry in self.manifest["weights"]["parts"]:
            if entry["transfer"] not in self.present:
                continue
            found = check(entry, self._candidates(entry)[:1])  # its own folder
            if found.problem:
                raise BundleError(f"{self._describe(entry)} is {found.problem}: send transfer "
                                  f"{entry['transfer']} again")
            (self.stash / "parts").mkdir(exist_ok=True)
            shutil.copyfile(found.path, self.stash / "parts" / entry["file"])
            lines.append(f"stored {self._describe(entry)}: {entry['num_bytes'] / MIB:.1f} MiB, "
                         f"SHA-256 ok, in {self.stash / 'parts'}")
        return lines

    def _describe(self, entry: dict[str, Any]) -> str:
        parts = self.manifest["weights"]["parts"]
        return f"weights part {parts.index(entry) + 1} of {len(parts)}"

    def weights(self) -> Path:
        """Join and check the weights -> the file's path in the stash. Raises BundleError
        naming every missing or corrupt part and how to bring it."""
        weights = self.manifest["weights"]
        target = self.stash / weights["file"]
        if target.is_file() and not check(weights | {"file": target.name}, [target]).problem:
            return target
        found = [check(e, self._candidates(e)) for e in weights["parts"]]
        problems = [f"{self._describe(f.entry)} is {f.problem}" + (
            f": it travels in transfer {f.entry['transfer']} ({BUNDLE_DIR}/transfer-"
            f"{f.entry['transfer']}), stored by its call in {self.stash / 'parts'}, which "
            "lasts only while the machine stays warm (30 s after a call); send that transfer "
            "again, then the last one straight after" if f.problem == "missing" else "")
            for f in found if f.problem]
        if problems:
            raise BundleError("; ".join(problems))
        self.stash.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        with partial.open("wb") as out:
            for f in found:
                with f.path.open("rb") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
        whole = check(weights | {"file": partial.name}, [partial])
        if whole.problem:
            partial.unlink()
            raise BundleError(f"the joined weights are {whole.problem}: rebuild the bundle")
        partial.replace(target)
        return target
