"""The app's explanations, written once: the start-here text and diagram, the glossary, the
algorithms' table (from their classes; the README holds the same), and the caveats shown beside
results where they apply."""

from __future__ import annotations

from collections.abc import Sequence

from engine import Engine, RunResult, algorithm, algorithm_names, parameters, split_label, users

PAPER = "https://arxiv.org/abs/2410.15332"
SMALL_MODEL_PARAMETERS = 1_000_000_000

START = f"""
**EPIC Lab** shows *position-independent caching* (PIC) of an LLM's KV cache, after
[EPIC (Hu et al., ICML 2025)]({PAPER}).

- **Compile**: each document (a *chunk*) runs through the model once, alone, at positions
  0…T-1; its keys and values (its KV cache) are stored under a key made of its content only.
- **Link**: a prompt is a prefix (system prompt), any chunks in any order, and a question. The
  stored KV is moved to the chunks' new positions and reused: only the uncached tokens, and
  whatever the algorithm chooses to *recompute*, go through the model again.
- **Why it matters**: prefix caching reuses KV only when the whole beginning of the prompt is
  identical; change the system prompt or the order of the documents and it reuses nothing.
  PIC reuses every chunk wherever it sits. Linking naively leaves a false *attention sink* at
  every chunk start; **LegoLink** recomputes the first *k* tokens of each chunk to remove it.

**How to read a result**: *first token* and *whole answer* say whether an algorithm's answer
is token for token the same as full recompute's (the exact, slow reference); *first-token KL*
measures how far its first-token distribution is from the reference (0 = identical); *TTFT*
is the time to the first answer token. Faster with the same answer is the goal.

**Start here**: press *Run the story* below (the same question under 2 prefixes × 2 orders),
then *Inspect the last request* to see the false sinks. Then compile your own documents on the
**Library** tab and compare on **Compose**.
"""

DIAGRAM = """
<div class='diagram' role='img' aria-label='compile once, link anywhere'>
<div class='lane'><span class='step'>compile (once)</span>
<span class='box doc'>doc A → KV A</span><span class='box doc'>doc B → KV B</span></div>
<div class='lane'><span class='step'>link (every request)</span>
<span class='box new'>prefix 1</span><span class='box doc'>KV A</span>
<span class='box doc'>KV B</span><span class='box new'>question</span></div>
<div class='lane'><span class='step'>another prefix, order</span>
<span class='box new'>prefix 2</span><span class='box doc'>KV B</span>
<span class='box doc'>KV A</span><span class='box new'>question</span></div>
<div class='legend'><span class='box new'>computed</span><span class='box doc'>reused from the
store (LegoLink recomputes its first k tokens)</span></div>
</div>
"""

_GLOSSARY = """
- **chunk**: one document (or a piece of a long one), compiled into KV once.
- **compile / compile pass**: running a chunk through the model alone to store its KV; a
  chunk already stored is found by its content and not compiled again.
- **hit**: a request that read a chunk's stored KV.
- **TTFT** (time to first token): from a request's arrival to its first answer token,
  linking included. Lower is faster.
- **first token / whole answer**: whether the algorithm's greedy answer equals full
  recompute's, for the first token / for every token (compared as token ids).
- **same tokens**: how many answer tokens agree with full recompute's before the first
  difference.
- **first-token KL**: KL(full recompute ‖ algorithm) of the first answer token's probability
  distribution, in nats; 0 means identical, larger means further off.
- **attention sink**: the first tokens of a sequence draw much of the attention; a chunk
  compiled alone has its own, which is false once it sits in the middle of a prompt.
"""

SMALL_MODEL = ("A model this small answers many questions wrongly with every algorithm: "
               "compare the algorithms with full recompute (the same answer, a small KL), "
               "not with the truth.")
PREFIX_CACHE = ("{label} reused **{reused}** of {total} prompt tokens: it reuses only an "
                "identical token prefix of an earlier request, so a new system prompt or "
                "document order leaves it almost nothing; the rest is a full prefill, on this "
                "CPU through the masked attention path, which is why it can be slower than "
                "full recompute here.")


def glossary() -> str:
    """The glossary, with a line for every declared algorithm parameter."""
    knobs = "".join(f"- **{p.name}** ({', '.join(users(p))}): {p.help}.\n" for p in parameters())
    return _GLOSSARY + knobs


def algorithms_markdown() -> str:
    """Every registered algorithm as its class declares it, as a Markdown table."""
    lines = ["| algorithm | parameters | what it recomputes among cached chunk tokens | from |",
             "|---|---|---|---|"]
    for name in algorithm_names():
        cls = algorithm(name)
        knobs = ", ".join(f"{p.name} ({p.describe()})" for p in cls.parameters) or "–"
        lines.append(f"| `{name}` | {knobs} | {cls.summary} | {cls.paper} |")
    return "\n".join(lines)


def num_parameters(engine: Engine) -> int:
    return sum(p.numel() for p in engine.model.hf_model.parameters())


def for_results(engine: Engine, shown: Sequence[RunResult]) -> list[str]:
    """The caveats that apply to these results: the small-model one, and that of an algorithm
    that reuses earlier requests' prefixes (prefix_cache), and any chunk reordering."""
    lines = reorderings(shown)
    for r in shown:
        if algorithm(split_label(r.algorithm)[0]).reuses_prefixes:
            lines.append(PREFIX_CACHE.format(label=r.algorithm, reused=r.counts.num_cached,
                                             total=r.num_prompt_tokens))
    if num_parameters(engine) < SMALL_MODEL_PARAMETERS:
        lines.append(f"*{SMALL_MODEL}*")
    return lines


def reorderings(shown: Sequence[RunResult]) -> list[str]:
    """One line per run that linked the chunks in another order than the first run's (the
    prompt as composed): which order, numbered as composed."""
    if not shown:
        return []
    composed = shown[0].layout
    return [f"**{r.algorithm} reordered the chunks**: it linked them as "
            f"{', '.join(f'C{n}' for n in r.layout.order_in(composed))} (numbered as composed); "
            "its answer is measured against full recompute of the prompt as composed."
            for r in shown if r.layout.reordered_from(composed)]
