"""The operator's store-wide actions on the Library tab: clear every visitor's chunks, save the
store under a name, load a saved one. Refused unless the app runs with EPIC_OPERATOR=1; a
store's name never becomes a path outside the engine's cache directory."""

from __future__ import annotations

import re
from pathlib import Path

from app.errors import user_errors
from app.lab import Lab
from app.render import md

STORE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
OPERATOR_ONLY = "is for the operator of this app (start it with EPIC_OPERATOR=1)"


@user_errors
def clear_store(lab: Lab, session: str, confirm: str) -> str:
    """Operator only: drop every chunk of every visitor; type CLEAR to confirm."""
    if not lab.limits.operator:
        raise ValueError(f"clearing the whole store {OPERATOR_ONLY}")
    if confirm != "CLEAR":
        raise ValueError("type CLEAR to confirm clearing every visitor's chunks")
    return f"Cleared {lab.libraries.clear_all()} chunk(s) from the store (every visitor)."


def store_dir(lab: Lab, name: str) -> Path:
    """Where the store named `name` is saved: always under the engine's cache directory."""
    name = name.strip() if isinstance(name, str) else ""
    if not STORE_NAME.fullmatch(name):
        raise ValueError("a store name is 1-64 letters, digits, '-' or '_' (no paths)")
    return Path(lab.engine.config.cache_dir) / "stores" / name


def saved_stores(lab: Lab) -> list[str]:
    """Names of the stores saved so far."""
    root = Path(lab.engine.config.cache_dir) / "stores"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


@user_errors
def save_store(lab: Lab, session: str, name: str) -> str:
    """Operator only: save every chunk in the store under a name (replacing what it held)."""
    if not lab.limits.operator:
        raise ValueError(f"saving the store {OPERATOR_ONLY}")
    directory = store_dir(lab, name)
    count = lab.engine.store.save(directory)
    return f"Saved {count} chunk(s) to store '{directory.name}'."


@user_errors
def load_store(lab: Lab, session: str, name: str) -> str:
    """Operator only: load a saved store's chunks into your library; bad files are skipped
    and named."""
    if not lab.limits.operator:
        raise ValueError(f"loading a saved store {OPERATOR_ONLY}")
    directory = store_dir(lab, name)
    if not directory.is_dir():
        known = ", ".join(saved_stores(lab)) or "none yet"
        raise ValueError(f"no saved store named '{directory.name}' (saved: {known})")
    count, warnings = lab.engine.store.load(directory)
    keys = [f.stem for f in directory.glob("*.safetensors") if f.stem in lab.engine.store]
    chunks = [lab.engine.store.peek(key) for key in keys]  # a variant copy goes with its chunk
    lab.libraries.add(session, [(c.key, c.title, c.num_tokens) for c in chunks if not c.variant])
    text = f"Loaded {count} new chunk(s) from store '{directory.name}'."
    if warnings:
        text += "  \nSkipped: " + "; ".join(md(w) for w in warnings)
    return text
