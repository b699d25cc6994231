"""Build, on this machine, what the GPU machine lacks for the check, in transfers that fit.

    python -m gpu_check bundle [--out .gpu_bundle] [--data ../shared/data/hotpotqa.jsonl]

The GPU machine already has Python 3.12, torch, transformers, tokenizers, safetensors, numpy
and accelerate, and reaches no network; every file comes as the working tree of one `run` call
(the repository's travelling files plus the carried folders), at most 60 MiB a call. So:
- the SmolLM2 GGUF, in parts of at most 55 MiB, one per transfer, with SHA-256 checksums;
- wheels (pure Python, for Python 3.12) of the packages the check imports and that machine
  lacks: `gguf` (transformers reads the GGUF with it) and `redis` (the engine's shared tier is
  imported with the engine), at the versions requirements.txt pins;
- SmolLM2's tokenizer as files, so the random Llama-8B-shaped model needs no GGUF to get one;
- the first examples of the shared hotpotqa data (the data folder does not travel).
Every transfer's size is printed, the repository's travelling files included; a transfer over
the limit is refused.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from gpu_check.parts import (
    BUNDLE_DIR,
    MANIFEST,
    MIB,
    PART_LIMIT_BYTES,
    TRANSFER_LIMIT_BYTES,
    BundleError,
    file_entry,
    split,
)

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ("gguf", "redis")  # imported by the check, absent on the GPU machine
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                   "manylinux2014_x86_64", "manylinux1_x86_64")
DATA_NAME = "hotpotqa-10.jsonl"


def pinned(name: str, requirements: Path = ROOT / "requirements.txt") -> str:
    """`name==version` as requirements.txt pins it."""
    for line in requirements.read_text().splitlines():
        spec = line.split("#")[0].strip()
        if spec.lower().startswith(f"{name.lower()}=="):
            return spec
    raise BundleError(f"requirements.txt pins no version of {name}")


def bundled_gguf() -> Path:
    from engine import BUNDLED_FILE, BUNDLED_PACKAGE, INSTALL_HINT
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)  # locate without importing it
    path = (Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE
            if spec and spec.submodule_search_locations else None)
    if path is None or not path.is_file():
        raise BundleError(f"the bundled SmolLM2 GGUF is not installed here: `{INSTALL_HINT}`")
    return path


def default_data() -> Path:
    """The shared hotpotqa file beside the checkout (../shared/data, as the README says)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        path = base / "shared" / "data" / "hotpotqa.jsonl"
        if path.is_file():
            return path
    raise BundleError("../shared/data/hotpotqa.jsonl not found: give --data")


def travelling_bytes(repo: Path) -> int:
    """Bytes of what every `run` call sends besides its carry: tracked files and untracked
    ones git does not ignore (a link counts as a link), and a shared/ folder in the checkout."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=repo, capture_output=True, check=True).stdout
    paths = {repo / p for p in out.decode().split("\0") if p}
    if (repo / "shared").is_dir():
        paths.update(p for p in (repo / "shared").rglob("*") if p.is_file())
    return sum(p.lstat().st_size for p in paths if p.exists() or p.is_symlink())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def download_wheels(target: Path, cache: Path) -> list[Path]:
    """Wheels for CPython 3.12 on x86-64 Linux, no dependencies (the GPU machine has them),
    downloaded once into `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    wheels = []
    for name in WHEELS:
        spec = pinned(name)
        project, version = spec.split("==")
        stem = f"{project.replace('-', '_')}-{version}"
        have = sorted(cache.glob(f"{stem}-*.whl"))
        if not have:
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                   "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
                   *(a for p in WHEEL_PLATFORMS for a in ("--platform", p)), "-d", str(cache),
                   spec]
            done = subprocess.run(cmd, capture_output=True, text=True)
            have = sorted(cache.glob(f"{stem}-*.whl"))
            if done.returncode != 0 or not have:
                raise BundleError(f"pip could not download {spec}: {done.stderr.strip()[-400:]}")
        target.mkdir(parents=True, exist_ok=True)
        wheels.append(Path(shutil.copy2(have[0], target)))
    return wheels


def save_tokenizer(gguf: Path, target: Path) -> None:
    """SmolLM2's tokenizer as plain files (tokenizer.json, its config, the chat template)."""
    from transformers import AutoTokenizer
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(target)


def save_data(source: Path, target: Path, count: int) -> None:
    from bench.data import examples_from_jsonl
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines[:count]) + "\n", encoding="utf-8")
    examples_from_jsonl(target)  # the check reads it this way: fail here, not there


def build(out: Path, data: Path, num_examples: int = 10, gguf: Path | None = None,
          repo: Path = ROOT) -> dict[str, Any]:
    """Write the bundle under `out` (replacing what was there) -> its manifest."""
    gguf = gguf or bundled_gguf()
    inside = out.resolve().is_relative_to(repo.resolve())
    if inside and subprocess.run(["git", "check-ignore", "-q", str(out / "transfer-1" / "x")],
                                 cwd=repo).returncode != 0:
        raise BundleError(f"{out} is not ignored by git: it would travel with every call "
                          f"(add /{BUNDLE_DIR}/ to .gitignore)")
    num_transfers = max(2, math.ceil(gguf.stat().st_size / PART_LIMIT_BYTES))
    for old in out.glob("transfer-*"):
        shutil.rmtree(old)
    folders = [out / f"transfer-{i + 1}" for i in range(num_transfers)]
    parts = split(gguf, folders)
    last, n = folders[-1], num_transfers
    wheels = download_wheels(last / "wheels", out / "wheel-cache")
    save_tokenizer(gguf, last / "tokenizer")
    save_data(data, last / "data" / DATA_NAME, num_examples)
    files = [file_entry(p, p.relative_to(last).as_posix(), n)
             for p in sorted(last.rglob("*")) if p.is_file() and not p.name.startswith("weights.")]
    tree = travelling_bytes(repo)
    transfers = []
    for i, folder in enumerate(folders):
        own = folder_bytes(folder) + 4096  # the manifest, written below
        transfers.append({"index": i + 1, "carry": f"{BUNDLE_DIR}/{folder.name}",
                          "bundle_bytes": own, "tree_bytes": tree, "num_bytes": own + tree})
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo,
                            capture_output=True, text=True).stdout.strip()
    manifest = {
        "format": 1, "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "commit": commit,
        "limits": {"transfer_bytes": TRANSFER_LIMIT_BYTES, "part_bytes": PART_LIMIT_BYTES},
        "weights": {"file": gguf.name, "num_bytes": gguf.stat().st_size,
                    "sha256": file_entry(gguf, gguf.name, 0)["sha256"], "parts": parts},
        "wheels": [w.name for w in wheels], "data": {"source": data.name, "examples": num_examples},
        "files": files, "transfers": transfers,
    }
    for folder in folders:
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def report(manifest: dict[str, Any]) -> tuple[list[str], bool]:
    """One line per transfer (its size and what it holds) -> (lines, all within the limit)."""
    lines, fits = [], True
    for t in manifest["transfers"]:
        parts = [p["file"] for p in manifest["weights"]["parts"] if p["transfer"] == t["index"]]
        extra = " + wheels, tokenizer, data" if t["index"] == len(manifest["transfers"]) else ""
        over = t["num_bytes"] > TRANSFER_LIMIT_BYTES
        fits &= not over
        lines.append(f"transfer {t['index']}: {t['num_bytes'] / MIB:5.1f} MiB = repository "
                     f"{t['tree_bytes'] / MIB:.1f} MiB + {t['carry']} "
                     f"{t['bundle_bytes'] / MIB:.1f} MiB ({', '.join(parts)}{extra})"
                     + (f"  OVER the {TRANSFER_LIMIT_BYTES / MIB:.0f} MiB limit" if over else ""))
    return lines, fits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpu_check bundle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / BUNDLE_DIR)
    parser.add_argument("--data", type=Path, help="hotpotqa JSONL (default ../shared/data)")
    parser.add_argument("--examples", type=int, default=10, help="examples the check uses")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.out, args.data or default_data(), args.examples)
    except BundleError as e:
        print(f"bundle: {e}", file=sys.stderr)
        return 1
    lines, fits = report(manifest)
    print("\n".join(lines))
    if not fits:
        print(f"refused: a transfer is over {TRANSFER_LIMIT_BYTES / MIB:.0f} MiB; make the "
              "repository's travelling files smaller", file=sys.stderr)
        return 1
    print(f"bundle in {args.out} (weights SHA-256 {manifest['weights']['sha256'][:16]}...); "
          "README.md, section 'GPU check', gives the calls")
    return 0
