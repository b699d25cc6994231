"""Benchmarks from the command line: accuracy, needle in a haystack, speed, replicas.

    python -m bench accuracy --data FILE.jsonl --algorithms full_recompute,naive,\
legolink-16 --limit N --max-chunks C --out DIR     # DIR/accuracy.json, .csv, .html
    python -m bench needle --data FILE.jsonl --num-chunks 6,16 --limit N --out DIR
    python -m bench speed --lengths 512,1024,2048,4096 --out DIR  # speed.json, .html
    python -m bench replica --num-chunks 4 --out DIR   # DIR/replica.json (starts a redis-server)
    python -m bench frontier --data FILE.jsonl --max-chunks 6 --limit N --out DIR
                                                  # frontier.json, .html (--needle: haystacks)

Algorithms carry their parameter in the label ("legolink-16", "cacheblend-15"; the registered
algorithms and what their numbers mean are listed under --algorithms); full_recompute always
runs, first, as the reference. The runners live in bench.accuracy, bench.needle,
bench.speed and bench.frontier, importable without this command line.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.accuracy import run_accuracy
from bench.common import tqdm_progress
from bench.data import examples_from_jsonl, passages_from_examples
from bench.frontier import FRONTIER_ALGORITHMS, corner_text, run_frontier
from bench.needle import run_needle
from bench.replica import local_redis, run_replica
from bench.report import (
    write_accuracy_csv,
    write_accuracy_html,
    write_frontier_html,
    write_json,
    write_speed_html,
)
from bench.speed import run_speed
from engine import DEFAULT_ALGORITHMS, Engine, EngineConfig, label_forms


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("--out", required=True, type=Path, help="directory for the results")
    base.add_argument("--model", help="bundled:smollm2 (default), a hub id or a local path")
    base.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    base.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16 | float16")
    common = argparse.ArgumentParser(add_help=False, parents=[base])
    # No default here: parents share their actions, so a subcommand's default would leak
    # into the others; each command takes its own in `parse_args`.
    common.add_argument("--algorithms", help="comma-separated labels, name[-variant][-number]: "
                        f"{'; '.join(label_forms())} (default: {','.join(DEFAULT_ALGORITHMS)}; "
                        "frontier: its settings)")
    accuracy = commands.add_parser("accuracy", parents=[common],
                                   help="task score and fidelity per algorithm")
    accuracy.add_argument("--data", required=True, type=Path, help="JSONL, shared schema")
    accuracy.add_argument("--limit", type=int, help="first N examples")
    accuracy.add_argument("--max-chunks", type=int, help="keep the first C chunks per example")
    accuracy.add_argument("--max-new-tokens", type=int,
                          help="override the task's default answer length")
    needle = commands.add_parser("needle", parents=[common], help="needle in a haystack")
    needle.add_argument("--data", required=True, type=Path, help="passages to build from")
    needle.add_argument("--num-chunks", type=_ints, default=(6, 16),
                        help="haystack sizes in chunks, comma-separated")
    needle.add_argument("--limit", type=int, default=20, help="examples per size")
    needle.add_argument("--seed", type=int, default=0, help="same seed, same examples")
    needle.add_argument("--chunk-words", type=int, default=150,
                        help="words per haystack chunk (~240 tokens)")
    speed = commands.add_parser("speed", parents=[common], help="TTFT and throughput")
    speed.add_argument("--lengths", type=_ints, default=(512, 1024, 2048, 4096),
                       help="context lengths in tokens, comma-separated")
    speed.add_argument("--repeats", type=int, default=3,
                       help="timed repetitions per length, after one warm-up")
    speed.add_argument("--requests", type=int, default=16, help="throughput stream length")
    speed.add_argument("--chunk-tokens", type=int, default=350, help="tokens per chunk")
    speed.add_argument("--seed", type=int, default=0, help="seeds texts, prefixes, streams")
    speed.add_argument("--data", type=Path, help="passages for the chunk text "
                       "(default: synthetic text; speed does not depend on it)")
    replica = commands.add_parser("replica", parents=[base],
                                  help="a second replica's first request, through Redis")
    replica.add_argument("--store-url", help="the shared Redis (default: start a redis-server "
                         "on a free loopback port)")
    replica.add_argument("--num-chunks", type=int, default=4, help="chunks in the document")
    replica.add_argument("--chunk-tokens", type=int, default=512, help="tokens per chunk")
    replica.add_argument("--repeats", type=int, default=5, help="timed requests of each kind")
    replica.add_argument("--algorithm", default="legolink-16", help="the link algorithm")
    frontier = commands.add_parser("frontier", parents=[common],
                                   help="first-token KL against TTFT for every setting")
    frontier.add_argument("--data", required=True, type=Path,
                          help="JSONL, shared schema (with --needle: the passages to use)")
    frontier.add_argument("--limit", type=int, default=20, help="examples per context length")
    frontier.add_argument("--max-chunks", type=_ints, default=(6,),
                          help="context lengths in chunks, comma-separated")
    frontier.add_argument("--needle", action="store_true",
                          help="needle haystacks of --max-chunks chunks instead of the examples")
    frontier.add_argument("--seed", type=int, default=0, help="needle: same seed, same examples")
    frontier.add_argument("--chunk-words", type=int, default=150,
                          help="needle: words per haystack chunk")
    frontier.add_argument("--max-new-tokens", type=int,
                          help="override the task's default answer length")
    return parser


def _config(args: argparse.Namespace, **extra: Any) -> EngineConfig:
    options: dict[str, Any] = {"device": args.device, "dtype": args.dtype, **extra}
    if args.model:
        options["model"] = args.model
    return EngineConfig(**options)


def _run_replica(args: argparse.Namespace) -> list[Path]:
    with ExitStack() as stack:
        url = args.store_url or stack.enter_context(local_redis())
        with tqdm_progress("replica") as progress:
            result = run_replica(_config(args, store_url=url), args.num_chunks,
                                 args.chunk_tokens, args.repeats, args.algorithm,
                                 progress=progress)
    ttft = result["ttft_ms_median"]
    print(f"{result['context_tokens']} tokens in {result['num_chunks']} chunks, "
          f"{result['kv_bytes'] / 1e6:.1f} MB of KV, {result['algorithm']}")
    print(f"TTFT median: local hit {ttft['local_hit']:.1f} ms, second replica "
          f"{ttft['second_replica']:.1f} ms, compile {ttft['compile']:.1f} ms")
    low = result["ttft_ms_min"]
    print(f"TTFT min: local hit {low['local_hit']:.1f} ms, second replica "
          f"{low['second_replica']:.1f} ms, compile {low['compile']:.1f} ms")
    print(f"second replica / local hit = {result['second_replica_over_local_hit']:.2f} "
          f"(target <= 1.3: {'met' if result['targets'][0]['met'] else 'MISSED'}), "
          f"/ compile = {result['second_replica_over_compile']:.3f}")
    running = result["running_replica"]
    print(f"running replica (prefetched the new document in "
          f"{running['prefetch_lag_ms_median']:.0f} ms): first request "
          f"{running['ttft_ms_median']:.1f} ms, {running['over_local_hit']:.2f}x the local hit "
          f"({running['local_hit_ms_median']:.1f} ms)")
    t = result["transfer"]
    print(f"transfer over the link to Redis: GET {t['get_mb_per_s']:.0f} MB/s, as a request "
          f"reads (parallel, checked) {t['fetch_mb_per_s']:.0f} MB/s; same answer: "
          f"{result['same_answer']}")
    return [write_json(result, args.out / "replica.json")]


def _engine(args: argparse.Namespace) -> Engine:
    return Engine(_config(args))


def _examples(path: Path, limit: int | None) -> list[dict[str, Any]]:
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    return examples_from_jsonl(path)[:limit]


def _print_rows(rows: dict[str, dict[str, float]], columns: tuple[str, ...]) -> None:
    print(f"{'algorithm':<16}" + "".join(f"{c:>22}" for c in columns))
    for label, row in rows.items():
        print(f"{label:<16}" + "".join(f"{row[c]:>22.4g}" for c in columns))


def run_command(args: argparse.Namespace) -> list[Path]:
    """Run one parsed command -> the files written."""
    out: Path = args.out
    if args.command == "replica":
        return _run_replica(args)
    if args.command == "accuracy":
        examples = _examples(args.data, args.limit)
        engine = _engine(args)
        with tqdm_progress("accuracy") as progress:
            result = run_accuracy(engine, examples, args.algorithms, args.max_chunks,
                                  args.max_new_tokens, progress)
        result = {"data": str(args.data), "limit": args.limit, **result}
        _print_rows(result["algorithms"], ("score", "agreement", "first_token_kl",
                                           "ttft_ms_median", "recompute_share"))
        return [write_json(result, out / "accuracy.json"),
                write_accuracy_csv(result, out / "accuracy.csv"),
                write_accuracy_html(result, out / "accuracy.html")]
    if args.command == "needle":
        passages = passages_from_examples(_examples(args.data, None))
        engine = _engine(args)
        with tqdm_progress("needle") as progress:
            result = run_needle(engine, passages, args.num_chunks, args.limit, args.algorithms,
                                args.seed, args.chunk_words, progress=progress)
        result = {"data": str(args.data), **result}
        for size, block in result["sizes"].items():
            print(f"{size} chunks, {block['context_tokens_mean']:.0f} tokens on average")
            _print_rows(block["algorithms"], ("score", "agreement", "first_token_kl",
                                              "ttft_ms_median"))
        return [write_json(result, out / "needle.json")]
    if args.command == "frontier":
        return _frontier(args)
    passages = passages_from_examples(_examples(args.data, None)) if args.data else None
    engine = _engine(args)
    with tqdm_progress("speed") as progress:
        result = run_speed(engine, args.lengths, args.repeats, args.algorithms,
                           args.chunk_tokens, args.requests, seed=args.seed,
                           passages=passages, progress=progress)
    for length, block in result["sweep"].items():
        print(f"{length} tokens requested, {block['context_tokens']:.0f} linked")
        _print_rows(block["algorithms"], ("ttft_ms_median", "ttft_ratio_to_full_recompute",
                                          "ttft_ratio_to_naive"))
    for target in result["targets"]:
        print(f"{target['name']}: {target['value']:.3f} (target {target['target']}, "
              f"{'met' if target['met'] else 'MISSED'})")
    return [write_json(result, out / "speed.json"), write_speed_html(result, out / "speed.html")]


def _frontier(args: argparse.Namespace) -> list[Path]:
    _examples(args.data, args.limit)  # checks --limit
    examples = _examples(args.data, None)  # the first --limit that fit are kept (fitting)
    engine = _engine(args)
    with tqdm_progress("frontier") as progress:
        result = run_frontier(engine, examples, args.max_chunks, args.algorithms, args.needle,
                              args.limit, args.seed, args.chunk_words, args.max_new_tokens,
                              progress)
    result = {"data": str(args.data), **result}
    for size, block in result["lengths"].items():
        print(f"{size} chunks, {block['context_tokens_mean']:.0f} tokens on average, "
              f"n={block['n']}" + (f", {len(block['skipped'])} over the context limit left out"
                                   if block["skipped"] else ""))
        _print_rows(block["algorithms"], ("score", "agreement", "first_token_kl",
                                          "ttft_ms_median", "recompute_share"))
        goal = block["target"]
        if goal:
            print(f"target: {goal['algorithm']} KL {goal['first_token_kl']:.4f} vs "
                  f"{goal['kl_reference']} {goal['kl_reference_value']:.4f} "
                  f"({'met' if goal['kl_met'] else 'MISSED'}); TTFT {goal['ttft_ratio']:.2f}x "
                  f"{goal['ttft_reference']} ({'met' if goal['ttft_met'] else 'MISSED'})")
        if block.get("corner"):
            print(corner_text(block["corner"]).strip())
    out: Path = args.out
    return [write_json(result, out / "frontier.json"),
            write_frontier_html(result, out / "frontier.html")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line -> its arguments, with the command's own default algorithms."""
    args = build_parser().parse_args(argv)
    if getattr(args, "algorithms", "") is None:
        defaults = FRONTIER_ALGORITHMS if args.command == "frontier" else DEFAULT_ALGORITHMS
        args.algorithms = ",".join(defaults)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        paths = run_command(args)
    except (ValueError, RuntimeError, OSError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
