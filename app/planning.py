"""A call checked and estimated before it is queued: a Compose or Inspect request (the
visitor's inputs, from the UI or the API, as one checked Request per algorithm, the reference
first, the prompt's layout, and what running them all will cost: app/cost.py, app/budget.py),
and a compile.

The validator (app/admission.py) and the handler call the same functions (`plan_runs`,
`library.check_work`), so the call that is admitted is the call that runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import library
from app.budget import Estimate, OverBudget, check_chars, check_context
from app.cost import Prompt, Work, decode_work, inspect_work, link_work, run_work
from app.lab import Lab
from app.progress import held_variants
from engine import (
    REFERENCE,
    AlgorithmSpec,
    Layout,
    Request,
    RunResult,
    algorithm_choices,
    parameters,
    whole_number,
)

KEY_CHARS = 64  # a chunk key is 32 hex digits: anything much longer is refused unread
SHRINK = ("choose fewer algorithms, fewer or shorter chunks, fewer new tokens, or a smaller k "
          "or CacheBlend ratio")


def choose_algorithms(algorithms: Sequence[str] | None) -> list[str]:
    """The chosen algorithms (names, or name-variant) in the registry's order, each once;
    unknown ones are refused."""
    chosen = list(dict.fromkeys(algorithms or []))
    for choice in chosen:
        AlgorithmSpec.of(choice)  # refuses an unknown name or variant, naming the choices
    if not chosen:
        raise ValueError("choose at least one algorithm")
    options = algorithm_choices()
    return sorted(chosen, key=lambda c: options.index(c) if c in options else len(options))


def settings(**by_name: Any) -> dict[str, Any]:
    """The knobs' values by parameter name (k=, ratio=, ...) -> by request keyword, every
    declared parameter checked: the engine reads None as "the default", but a caller of the
    app's API who sends None (or text) for a knob is told so. An absent knob (a direct call
    made before it was declared) takes its declared default."""
    return {p.keyword: p.check(by_name.get(p.name, p.default)) for p in parameters()}


def check_text(lab: Lab, prefix: Any, chunks: Any, question: Any) -> None:
    """Bound a request's text in characters, and its chunks in number, before anything
    tokenizes or looks them up (OverBudget)."""
    limit = lab.limits.prompt_chars
    check_chars(prefix, "prefix", limit)
    check_chars(question, "question", limit)
    if isinstance(chunks, list | tuple):
        most = lab.engine.config.max_chunks_per_request
        if len(chunks) > most:
            raise OverBudget(f"too many chunks: {len(chunks):,} given, at most {most} per "
                             "request")
        for key in chunks:
            check_chars(key, "chunk key", KEY_CHARS)


def make_requests(lab: Lab, session: str, prefix: Any, chunks: Any, question: Any,
                  algorithms: Sequence[str] | None, knobs: dict[str, Any],
                  max_new_tokens: Any, ensure: bool = False) -> tuple[list[Request], Layout]:
    """The Compose inputs (from the UI or the API; `knobs` by parameter name) as one checked
    Request per algorithm, the reference first, within the engine's and this app's limits ->
    (requests, the prompt's layout). Text over the character bounds is refused first
    (OverBudget); chunks must be in the visitor's library; a ValueError or KeyError names the
    problem. With `ensure` (in the model's lane only: it compiles), example documents the
    store lost are compiled again."""
    check_text(lab, prefix, chunks, question)
    chosen = choose_algorithms(algorithms)
    values = settings(**knobs)
    engine = lab.engine
    new_tokens = whole_number(max_new_tokens, "max_new_tokens", 1,
                              lab.limits.new_tokens_limit(engine.config))
    salt = lab.libraries.salt(session)  # prefix_cache reuses this visitor's requests only
    requests = [engine.request(prefix=prefix, chunks=chunks, question=question, algorithm=choice,
                               max_new_tokens=new_tokens, cache_salt=salt, **values)
                for choice in [REFERENCE, *[a for a in chosen if a != REFERENCE]]]
    first = requests[0]
    lab.libraries.check(session, first.chunks)
    if ensure:
        lab.ensure_examples(first.chunks)
    layout = engine.plan(first).layout  # the chunks' tokens, held or remembered: no model work
    check_context(layout.num_tokens, new_tokens,
                  min(lab.limits.context_tokens, engine.context_limit))
    return requests, layout


@dataclass(frozen=True)
class Plan:
    """A checked call of several runs of one prompt: the requests (the reference first), the
    prompt's layout, and the estimate of the whole call."""

    requests: list[Request]
    layout: Layout
    estimate: Estimate

    def spent(self, results: Sequence[RunResult], num_layers: int) -> Work:
        """The work the runs did: each link, and the decode steps its answer really took."""
        prompt = Prompt.of(self.layout)
        return sum((link_work(prompt, r.algorithm, num_layers) + decode_work(
            prompt.num_tokens, len(out.token_ids) + (out.stop_reason == "eos"), num_layers)
            for r, out in zip(self.requests, results, strict=False)), Work())


def plan_runs(lab: Lab, session: str, prefix: Any, chunks: Any, question: Any,
              algorithms: Sequence[str] | None, knobs: dict[str, Any], max_new_tokens: Any,
              inspect: bool = False, ensure: bool = False) -> Plan:
    """`make_requests` and the estimate of running them all (with `inspect`: inspections)."""
    requests, layout = make_requests(lab, session, prefix, chunks, question, algorithms, knobs,
                                     max_new_tokens, ensure)
    prompt, layers = Prompt.of(layout), lab.engine.model.spec.num_layers
    salt = lab.libraries.salt(session)  # the visitor's own compile variants held cost nothing
    work = sum((inspect_work(prompt, r.algorithm, layers, held) if inspect else
                run_work(prompt, r.algorithm, r.max_new_tokens, layers, held)
                for r in requests
                for held in [held_variants(lab.engine, layout, r.algorithm, salt)]), Work())
    what = (f"{len(requests)} runs of {layout.num_tokens:,} tokens, up to "
            f"{requests[0].max_new_tokens} new tokens each")
    kind = "inspect" if inspect else "answer"
    return Plan(requests, layout, lab.estimator.estimate(kind, work, what, SHRINK))


def estimate_compare(lab: Lab, session: str, prefix: Any, chunks: Any, question: Any,
                     algorithms: Any, k: Any, ratio: Any, max_new_tokens: Any,
                     **knobs: Any) -> Estimate:
    """What `run_compare` with these inputs will cost (checked when it is queued)."""
    return plan_runs(lab, session, prefix, chunks, question, algorithms,
                     {"k": k, "ratio": ratio, **knobs}, max_new_tokens).estimate


def estimate_compile_text(lab: Lab, session: str, text: Any, title: Any = "") -> Estimate:
    """What `compile_text` with these inputs will cost (checked when it is queued)."""
    return library.check_work(lab, session, [library.pasted(lab, text, title)])


def estimate_compile_files(lab: Lab, session: str, files: Any) -> None:
    """An upload's cost is known once it is parsed (the handler checks it then); before it is
    queued, plain-text files whose bytes alone are over the characters one compile may take
    (at most 4 bytes a character) are refused unread."""
    plain = [Path(f) for f in files or [] if isinstance(f, str)
             and Path(f).suffix.lower() in (".txt", ".md") and Path(f).is_file()]
    total = sum(f.stat().st_size for f in plain)
    if total > 4 * lab.limits.compile_chars:
        raise OverBudget(f"{total:,} bytes of text in one call is over this app's limit of "
                         f"{lab.limits.compile_chars:,} characters per compile: upload less "
                         "at a time")
