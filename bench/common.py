"""What every benchmark shares: progress reporting, compiling a run's chunks and evicting
them afterwards, and the engine facts every results file names."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine import Engine, chunk_token_ids

Progress = Callable[[float, str], None]  # (fraction done, what is running)


def compile_chunks(engine: Engine, texts: list[str], added: set[str]) -> list[str]:
    """Compile the chunks -> their keys in order; the keys that were not in the store before
    go into `added` as they are compiled, so the caller can evict them even after an error."""
    keys = []
    for text in texts:
        present = engine.store.key_for(chunk_token_ids(engine.tokenizer, text)) in engine.store
        keys.append(engine.compile(text))
        if not present:
            added.add(keys[-1])
    return keys


def compile_variants(engine: Engine, request: dict, specs: list, added: set[str]) -> None:
    """Compile the request's chunks as each spec's compile variant needs them (LegoLink-0's
    sink-free compile, ...) before anything is timed; new keys go into `added`."""
    before = {c.key for c in engine.store.stats().chunks}
    for spec in specs:
        keys = engine.compile_variants(engine.request(**request, algorithm=spec))
        added.update(k for k in keys if k not in before)


def evict(engine: Engine, keys: set[str]) -> None:
    """Evict the keys a benchmark added (those the store's own LRU has not evicted yet)."""
    for key in keys:
        if key in engine.store:
            engine.store.evict(key)


def engine_info(engine: Engine) -> dict[str, str]:
    """model, device, dtype: what every results file names."""
    return {"model": engine.model.model_id, "device": str(engine.model.device),
            "dtype": engine.config.dtype}


@contextmanager
def tqdm_progress(description: str) -> Iterator[Progress]:
    """A Progress drawing a tqdm bar on stderr."""
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=description, file=sys.stderr, unit="‰",
               bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}] {postfix}")
    try:
        def update(fraction: float, text: str) -> None:
            bar.n = round(1000 * min(max(fraction, 0.0), 1.0))
            bar.set_postfix_str(text)  # refreshes the bar
        yield update
    finally:
        bar.close()


def rotated(items: list, start: int) -> list:
    """`items` from index `start` (mod their count) round to the one before: the order of
    the `start`-th round, so that no item always runs first."""
    start %= len(items)
    return items[start:] + items[:start]
