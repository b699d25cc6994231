"""The public app's own limits, defined once: what one visitor may ask of the shared model.

The engine's limits (context, k, new tokens, chunks per request, the store's byte budget) live
in EngineConfig and Request.make; these bound what an anonymous visitor of a public Space may
do on top of them, so that nobody holds the one model slot for long, fills the disk or evicts
everybody else's chunks. Each one is read from an environment variable, so the operator of a
Space (or of a GPU machine) sets them without touching code. The handlers, the UI's ranges,
the "Limits" table on the Start tab and the README table all read this one object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from app.render import size_text
from engine import EngineConfig, parameters, users

MIB = 1024 * 1024


@dataclass(frozen=True)
class AppLimits:
    """Per-visitor and per-call bounds of the app (environment variable in each comment)."""

    operator: bool = False  # EPIC_OPERATOR=1: store-wide actions (clear all, save/load stores)
    compile_tokens: int = 16_384  # EPIC_COMPILE_TOKENS: tokens one compile call may add
    compile_chunks: int = 128  # EPIC_COMPILE_CHUNKS: chunks one compile call may add
    context_tokens: int = 4096  # EPIC_CONTEXT_TOKENS: prompt + new tokens of one model call
    new_tokens: int = 64  # EPIC_NEW_TOKENS: tokens generated per answer
    session_share: float = 0.25  # EPIC_SESSION_SHARE: share of the store one visitor may fill
    session_idle_s: int = 1800  # EPIC_SESSION_IDLE_S: a silent visitor's chunks are released
    max_sessions: int = 200  # EPIC_MAX_SESSIONS: libraries held at once (then newcomers wait)
    kept_outputs: int = 32  # EPIC_KEPT_OUTPUTS: visitors whose last outputs Gradio keeps
    queue_size: int = 32  # EPIC_QUEUE_SIZE: model calls waiting, all visitors together
    long_call_s: float = 10.0  # EPIC_LONG_CALL_S: a call expected to take longer says so
    inspect_bytes: int = 128 * MIB  # EPIC_INSPECT_BYTES: attention scores kept for redraws
    bench_examples: int = 2  # EPIC_BENCH_EXAMPLES: examples per accuracy run
    bench_chunks: int = 6  # EPIC_BENCH_CHUNKS: chunks per benchmark example
    bench_length: int = 1024  # EPIC_BENCH_LENGTH: longest context of a speed sweep
    bench_repeats: int = 2  # EPIC_BENCH_REPEATS: repeats per length of a speed sweep
    # EPIC_CLIENT_SHARE: share of the remembered libraries, of the store and of the kept
    # inspections that one client address may hold (however many sessions it opens)
    client_share: float = 0.25
    # EPIC_BEHIND_PROXY=1: the client address is the last X-Forwarded-For entry (app/clients.py)
    behind_proxy: bool = field(default_factory=lambda: bool(os.environ.get("SPACE_ID")))
    upload_files: int = 40  # EPIC_UPLOAD_FILES: files one address may upload a minute
    upload_bytes: int = 128 * MIB  # EPIC_UPLOAD_BYTES: bytes one address may upload a minute
    upload_calls: int = 20  # EPIC_UPLOAD_CALLS: upload requests one address may send a minute
    upload_keep_s: int = 60  # EPIC_UPLOAD_KEEP_S: an uploaded file no compile uses is deleted
    max_call_s: float = 60.0  # EPIC_MAX_CALL_S: model time one call may be estimated to take
    prompt_chars: int = 32_768  # EPIC_PROMPT_CHARS: characters of a prefix or a question
    compile_chars: int = 131_072  # EPIC_COMPILE_CHARS: characters one compile may tokenize
    redraws: int = 1  # EPIC_REDRAWS: attention redraws drawn at once, all visitors together

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type != "bool" and not value > 0:
                raise ValueError(f"{f.name} must be > 0, got {value}")
        if self.session_share > 1:
            raise ValueError(f"session_share must be in (0, 1], got {self.session_share}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AppLimits:
        """The limits with every EPIC_<NAME> variable that is set applied; a malformed value
        is refused with its name."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"EPIC_{f.name.upper()}"
            text = env.get(name, "").strip()
            if not text:
                continue
            try:
                if f.type == "bool":
                    values[f.name] = {"1": True, "true": True, "0": False,
                                      "false": False}[text.lower()]
                else:
                    values[f.name] = (float if f.type == "float" else int)(text)
            except (KeyError, ValueError):
                raise ValueError(f"{name}={text!r} is not a valid {f.type}") from None
        return cls(**values)

    def session_bytes(self, store_budget_bytes: int) -> int:
        """Bytes of chunk KV one visitor's own uploads may hold."""
        return int(self.session_share * store_budget_bytes)

    @property
    def client_sessions(self) -> int:
        """Libraries one client address may hold at once."""
        return max(1, int(min(self.client_share, 1.0) * self.max_sessions))

    def client_bytes(self, budget_bytes: int) -> int:
        """Bytes of a budget (the store's, the kept inspections') one client address may hold."""
        return int(min(self.client_share, 1.0) * budget_bytes)

    def new_tokens_limit(self, config: EngineConfig) -> int:
        """The most new tokens a visitor may ask for: the app's bound within the engine's."""
        return min(self.new_tokens, config.max_new_tokens)


def limits_rows(limits: AppLimits, config: EngineConfig, context_limit: int,
                max_file_bytes: int, max_files: int, max_chars: int,
                bytes_per_token: int) -> list[tuple[str, str, str]]:
    """(limit, value as served, where it is set) for the Start tab and the README: the values
    the running app enforces, engine and app limits together."""
    share = limits.session_bytes(config.store_budget_bytes)
    rows = [
        ("upload: bytes per file / files per upload / characters per upload",
         f"{size_text(max_file_bytes)} / {max_files} / {max_chars:,}", "app/uploads.py"),
        ("tokens / chunks one compile call may add",
         f"{limits.compile_tokens:,} / {limits.compile_chunks}",
         "EPIC_COMPILE_TOKENS / EPIC_COMPILE_CHUNKS"),
        ("chunk size (chunking budget)", f"{config.chunk_tokens} tokens", "EngineConfig"),
        ("prompt + new tokens of one model call",
         f"{min(limits.context_tokens, context_limit):,}", "EPIC_CONTEXT_TOKENS, EngineConfig"),
        ("chunks per request", str(config.max_chunks_per_request),
         "EngineConfig.max_chunks_per_request"),
        ("new tokens per answer", str(limits.new_tokens_limit(config)),
         "EPIC_NEW_TOKENS, EngineConfig"),
        *((f"{p.label} ({', '.join(users(p))})", p.describe(), "the algorithm's class")
          for p in parameters()),
        ("chunk KV kept in memory (all visitors)", size_text(config.store_budget_bytes),
         "EngineConfig.store_budget_bytes"),
        ("one visitor's own chunks", f"{size_text(share)} (≈ {share // bytes_per_token:,} "
         "tokens)", "EPIC_SESSION_SHARE"),
        ("a visitor's chunks are released", f"when the page closes, or after "
         f"{limits.session_idle_s // 60} min idle", "EPIC_SESSION_IDLE_S"),
        ("visitors whose last outputs (figures, tables) the server keeps",
         f"{limits.kept_outputs} (the most recent)", "EPIC_KEPT_OUTPUTS"),
        ("model calls queued per visitor / in all", f"1 / {limits.queue_size}",
         "EPIC_QUEUE_SIZE"),
        ("accuracy benchmark: examples / chunks each",
         f"{limits.bench_examples} / {limits.bench_chunks}",
         "EPIC_BENCH_EXAMPLES / EPIC_BENCH_CHUNKS"),
        ("speed benchmark: longest context / repeats",
         f"{limits.bench_length:,} tokens / {limits.bench_repeats}",
         "EPIC_BENCH_LENGTH / EPIC_BENCH_REPEATS"),
        ("store-wide actions (clear all, save and load stores)",
         "on" if limits.operator else "off (operator only)", "EPIC_OPERATOR=1"),
        ("libraries held at once (a session that holds nothing takes none) / per address",
         f"{limits.max_sessions} / {limits.client_sessions}",
         "EPIC_MAX_SESSIONS / EPIC_CLIENT_SHARE"),
        ("one address's chunks (all its sessions)",
         size_text(limits.client_bytes(config.store_budget_bytes)), "EPIC_CLIENT_SHARE"),
        ("the client address is", "the last X-Forwarded-For entry" if limits.behind_proxy
         else "the connection's peer", "EPIC_BEHIND_PROXY"),
        ("uploads per address and minute: requests / files / bytes",
         f"{limits.upload_calls} / {limits.upload_files} / {size_text(limits.upload_bytes)}",
         "EPIC_UPLOAD_CALLS / EPIC_UPLOAD_FILES / EPIC_UPLOAD_BYTES"),
        ("an uploaded file no compile uses is deleted after", f"{limits.upload_keep_s} s",
         "EPIC_UPLOAD_KEEP_S"),
        ("model time one call may take (estimated before it is queued; refused above)",
         f"{limits.max_call_s:,.0f} s", "EPIC_MAX_CALL_S"),
        ("characters of a prefix or a question / of one compile call's text (checked "
         "before tokenizing)", f"{limits.prompt_chars:,} / {limits.compile_chars:,}",
         "EPIC_PROMPT_CHARS / EPIC_COMPILE_CHARS"),
        ("attention redraws drawn at once (all visitors, a lane of their own)",
         str(limits.redraws), "EPIC_REDRAWS"),
    ]
    return rows


def limits_markdown(rows: list[tuple[str, str, str]]) -> str:
    """The rows as a Markdown table (for the app's Start tab and the README)."""
    lines = ["| limit | as served | set by |", "|---|---|---|"]
    lines += [f"| {limit} | {value} | `{where}` |" for limit, value, where in rows]
    return "\n".join(lines)
