"""The app's shared state: the one engine, the limits, the visitors' libraries, the examples.

Every handler takes `(lab, session, *inputs)`: the lab it serves and the visitor asking.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.admission import Admission
from app.budget import Estimator
from app.examples import Presets, compile_examples, load_presets, load_story, open_examples
from app.limits import AppLimits
from app.sessions import Libraries
from app.upload_guard import Uploads
from app.uploads import DocumentLimits
from engine import Engine


@dataclass
class Lab:
    """One engine shared by every visitor, and what the app keeps around it."""

    engine: Engine
    limits: AppLimits
    presets: Presets
    libraries: Libraries
    estimator: Estimator
    examples: dict[str, list[str]]  # example document file -> its chunk keys
    example_titles: dict[str, str]  # example chunk key -> title
    upload_limits: DocumentLimits = field(default_factory=DocumentLimits)
    story: dict[str, Any] | None = None  # the guided story's last results (first page)
    uploads: Uploads | None = None  # per-address upload allowances and unused uploads
    admission: Admission = field(init=False)  # who may join the model's queue

    def __post_init__(self) -> None:
        self.admission = Admission(self.limits, self.libraries, self.estimator)

    @classmethod
    def open(cls, engine: Engine, limits: AppLimits | None = None,
             presets: Presets | None = None, persist: bool = True) -> Lab:
        """The lab over `engine`: the examples' KV loaded (or compiled, and with `persist`
        kept beside the model cache for the next start), with the story saved by an earlier
        start, and the prices of model work measured on this machine (app/cost.py)."""
        limits = limits or AppLimits.from_env()
        examples = open_examples(engine, persist)
        titles = {key: engine.store.peek(key).title for keys in examples.values() for key in keys}
        libraries = Libraries(engine.store, limits, titles)
        return cls(engine, limits, presets or load_presets(), libraries,
                   Estimator.calibrated(engine, limits.long_call_s), examples, titles,
                   story=load_story(engine) if persist else None,
                   uploads=Uploads(limits, libraries.busy_clients))

    def ensure_examples(self, keys: Iterable[str]) -> int:
        """Recompile the example documents behind any of `keys` that the store no longer has
        nor remembers (an operator's clear, or a long run of evictions) -> chunks compiled."""
        store = self.engine.store
        missing = [name for name, doc_keys in self.examples.items()
                   if any(k in keys and k not in store and store.evicted_token_ids(k) is None
                          for k in doc_keys)]
        if not missing:
            return 0
        before = store.num_compiled
        compile_examples(self.engine, missing)
        return store.num_compiled - before

    def titles(self, session: str) -> dict[str, str]:
        """Key -> the title this visitor knows a chunk by (its own, or the example's)."""
        titles = dict(self.example_titles)
        own = self.libraries.get(session).chunks
        titles.update({key: title for key, (title, _) in own.items()})
        return titles

    def public(self, text: str) -> str:
        """`text` as a visitor may read it: the shared store's address (in its URL, and as the
        client's errors write it, host:port) is the operator's to see; visitors read "Redis"."""
        tier = self.engine.store.tier
        if self.limits.operator or tier is None:
            return text
        for address in tier.addresses():
            text = text.replace(address, "Redis")
        return text
