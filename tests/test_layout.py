"""The house rules that keep the layers apart (docs/ARCHITECTURE.md), checked on the source:
what each package may import, that everything outside the engine uses its public surface only,
that arrows inside the engine point down, that files stay small, and that the architecture
page's import table says what the source does."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

import engine

ROOT = Path(__file__).resolve().parents[1]
OURS = ("engine", "app", "bench", "visualize", "gpu_check")
LAYERS = ("runtime", "link", "store")  # the engine's packages, under its request layer
# package -> top-level modules it must never import
FORBIDDEN = {
    "engine": {"gradio", "plotly", "pypdf", "pandas", "app", "bench", "visualize"},
    "visualize": {"gradio", "app", "bench"},
    "bench": {"gradio", "app"},
    # The GPU check runs where none of these is installed (gpu_check/figures.py draws its
    # figures afterwards through bench.report; tests/gpu_check checks what it loads).
    "gpu_check": {"gradio", "plotly", "pypdf", "rouge_score", "app", "visualize"},
}
# Inside the engine: the engine packages each part may import (besides its own modules).
ENGINE_ARROWS = {
    "engine/runtime/": set(),  # knows no algorithm and no store
    "engine/link/": {"engine.runtime"},
    "engine/store/": set(),  # knows no model: compiling is a function it is given
    "engine/": {"engine.runtime", "engine.link", "engine.store"},  # the request layer
}


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names imported from it) of every absolute import, nested ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def _part(path: Path) -> str:
    """The package a source file belongs to: "engine/link/", "engine/" (the request layer),
    "app/", ..."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "engine" and len(parts) > 2:
        return f"engine/{parts[1]}/"
    return parts[0] + "/"


def _engine_targets(module: str, names: list[str]) -> set[str]:
    """The engine parts an import reaches: "engine.link" for engine.link(.x), "engine" for
    the request layer or the public surface."""
    parts = module.split(".")
    if parts[0] != "engine":
        return set()
    if len(parts) > 1:
        return {f"engine.{parts[1]}" if parts[1] in LAYERS else "engine"}
    return {f"engine.{n}" if n in LAYERS else "engine" for n in names}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_arrows_point_one_way(package):
    for path in _sources(package):
        bad = {module.split(".")[0] for module, _ in _imports(path)} & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize(
    "package", ["app", "bench", "visualize", "gpu_check", "app.py", "examples"])
def test_outside_the_engine_only_its_public_surface_is_imported(package):
    paths = [ROOT / package] if package.endswith(".py") else _sources(package)
    for path in paths:
        for module, names in _imports(path):
            where = f"{path.relative_to(ROOT)} imports"
            assert module != "engine" or set(names) <= set(engine.__all__), (
                f"{where} {sorted(set(names) - set(engine.__all__))} from engine: not in its "
                "__all__")
            assert not module.startswith("engine."), (
                f"{where} {module}: use the names engine/__init__.py exports")


def test_arrows_inside_the_engine_point_down():
    for path in _sources("engine"):
        part = _part(path)
        own = part.rstrip("/").replace("/", ".")
        allowed = {own} | ENGINE_ARROWS[part]
        for module, names in _imports(path):
            targets = _engine_targets(module, names)
            where = f"{path.relative_to(ROOT)} ({part}) imports {module}"
            assert targets <= allowed, f"{where}: it may import {sorted(allowed - {own})}"
            for target in targets - {own}:
                assert module in (target, "engine"), (
                    f"{where}: another package is imported through its __init__ ({target})")


def _actual_imports(part: str) -> set[str]:
    """What a package imports besides the standard library and itself: third-party top-level
    modules and our own packages (engine parts inside the engine)."""
    found: set[str] = set()
    for pkg in OURS:
        for path in _sources(pkg):
            if _part(path) != part:
                continue
            for module, names in _imports(path):
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                if top == "engine" and part.startswith("engine"):
                    found |= _engine_targets(module, names)
                elif top in OURS:
                    found.add(top)
                else:
                    found.add(top)
    own = part.rstrip("/").replace("/", ".")
    return found - {own} - ({"engine"} if part.startswith("engine") else set())


def test_the_architecture_page_states_every_package_s_imports():
    """docs/ARCHITECTURE.md's table of packages: its imports column is what the source
    imports, no more and no less."""
    page = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    cell = r"(?:[^|\\\n]|\\.)*"  # a table cell's text; "\|" is a pipe inside it
    rows = re.findall(rf"^\| `([a-z_/]+/)`{cell}\|{cell}\| ([^|\n]*) \|$", page, re.M)
    stated = {part: set(re.findall(r"`([a-z_.]+)`", imports)) for part, imports in rows}
    parts = {_part(p) for pkg in OURS for p in _sources(pkg)}
    assert set(stated) == parts, f"the table lists {sorted(stated)}, the source has {parts}"
    for part in sorted(parts):
        assert stated[part] == _actual_imports(part), (
            f"{part}: the page says {sorted(stated[part])}, the source imports "
            f"{sorted(_actual_imports(part))}")


def test_files_stay_small():
    for package in OURS:
        for path in _sources(package):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 320, f"{path.relative_to(ROOT)} has {lines} lines: split it"


def test_every_engine_package_declares_its_surface():
    for layer in LAYERS:
        package = __import__(f"engine.{layer}", fromlist=["__all__"])
        assert package.__all__, f"engine/{layer}/__init__.py declares no __all__"
        missing = [n for n in package.__all__ if not hasattr(package, n)]
        assert not missing, f"engine.{layer}.__all__ names {missing}, which it lacks"
    missing = [n for n in engine.__all__ if not hasattr(engine, n)]
    assert not missing, f"engine.__all__ names {missing}, which it lacks"
