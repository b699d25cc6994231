"""The app's limits: read from the environment, refused when malformed, and the table that
states them (Start tab, README) drawn from the same object."""

from __future__ import annotations

import pytest

from app.limits import AppLimits, limits_markdown, limits_rows
from engine import EngineConfig


def test_limits_come_from_epic_variables():
    limits = AppLimits.from_env({"EPIC_OPERATOR": "1", "EPIC_COMPILE_TOKENS": "500",
                                 "EPIC_SESSION_SHARE": "0.5", "EPIC_NEW_TOKENS": " 8 ",
                                 "EPIC_BENCH_LENGTH": ""})
    assert limits == AppLimits(operator=True, compile_tokens=500, session_share=0.5,
                               new_tokens=8)
    assert AppLimits.from_env({}) == AppLimits()
    assert AppLimits.from_env({"EPIC_MAX_CALL_S": "600", "EPIC_PROMPT_CHARS": "100000",
                               "EPIC_COMPILE_CHARS": "1000000", "EPIC_REDRAWS": "2"}) == \
        AppLimits(max_call_s=600.0, prompt_chars=100_000, compile_chars=1_000_000, redraws=2)
    assert AppLimits().max_call_s == 60.0  # a minute per anonymous call unless raised
    assert AppLimits().operator is False  # store-wide actions are off unless asked for


@pytest.mark.parametrize(("env", "message"), [
    ({"EPIC_COMPILE_TOKENS": "lots"}, "EPIC_COMPILE_TOKENS='lots' is not a valid int"),
    ({"EPIC_OPERATOR": "yes"}, "EPIC_OPERATOR='yes' is not a valid bool"),
    ({"EPIC_CONTEXT_TOKENS": "0"}, "context_tokens must be > 0, got 0"),
    ({"EPIC_SESSION_SHARE": "2"}, r"session_share must be in \(0, 1\], got 2.0"),
])
def test_malformed_limits_are_refused_by_name(env, message):
    with pytest.raises(ValueError, match=message):
        AppLimits.from_env(env)


def test_the_new_tokens_bound_is_the_tighter_of_app_and_engine():
    config = EngineConfig(model="x", device="cpu", max_new_tokens=16)
    assert AppLimits(new_tokens=64).new_tokens_limit(config) == 16
    assert AppLimits(new_tokens=8).new_tokens_limit(config) == 8


def test_the_table_states_the_served_values():
    config = EngineConfig(model="x", device="cpu")
    limits = AppLimits(compile_tokens=1000, context_tokens=2048, new_tokens=32)
    rows = {limit: value for limit, value, _ in limits_rows(limits, config, 8192, 5 * 2**20,
                                                             20, 2_000_000, 46080)}
    assert rows["tokens / chunks one compile call may add"] == "1,000 / 128"
    assert rows["prompt + new tokens of one model call"] == "2,048"
    assert rows["new tokens per answer"] == "32"
    k_row = "k: tokens recomputed per chunk (legolink, querylink, prophetkv, infoflow)"
    assert rows[k_row] == "0..1024, default 16"
    assert rows["ratio: share of cached tokens recomputed (cacheblend)"] == "0..1, default 0.15"
    assert rows["chunks per request"] == "64"
    assert rows["one visitor's own chunks"] == "512.0 MiB (≈ 11,650 tokens)"
    assert rows["store-wide actions (clear all, save and load stores)"] == "off (operator only)"
    table = limits_markdown(limits_rows(limits, config, 1024, 1, 1, 1, 1))
    assert table.splitlines()[0] == "| limit | as served | set by |"
    assert "| prompt + new tokens of one model call | 1,024 |" in table  # the model's own cap
